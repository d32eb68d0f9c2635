"""The unit of work: one database transaction, owned outside the repositories.

Repositories add and query; only the unit of work commits. Ingest relies on this to
store a batch of events and the consumer offsets that cover them atomically.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.orm import Session, sessionmaker


class UnitOfWork:
    """``with UnitOfWork(factory) as uow: ...; uow.commit()``; anything else rolls back."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._factory = session_factory
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside its 'with' block")
        return self._session

    def __enter__(self) -> UnitOfWork:
        self._session = self._factory()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._session is not None
        try:
            self._session.rollback()  # no-op after commit; undoes anything uncommitted
        finally:
            self._session.close()
            self._session = None

    def commit(self) -> None:
        self.session.commit()
