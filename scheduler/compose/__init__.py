"""Choosing and building a message, purely: which email an outbox record becomes now
(`select`), what its templates see (`context`), the text (`render`), the iCalendar part
(`ical`) and the finished RFC 5322 message (`build`, `messages`).

May import `scheduler.core` only; reads no file (the app hands it the templates' text)."""
