"""A real SMTP server (aiosmtpd) for the e-mail tests, in a thread, that a test can stop and
start again on the same port."""

from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

from ports import free_port


class Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, _server: object, _session: object, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        """Keep the message."""
        # The default policy unfolds long headers, as mail clients show them.
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


class SmtpServer:
    """A real SMTP server on a fixed port that a test can stop and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        """Listen (again) on the same port."""
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        """Stop listening: connections are refused."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def url(self) -> str:
        """Its FRAUDOPS_SMTP_URL."""
        return f"smtp://127.0.0.1:{self.port}"


@contextmanager
def running_smtp_server() -> Iterator[SmtpServer]:
    """A running SMTP server while the block runs."""
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def body_of(message: Message) -> str:
    """The plain-text body of a received e-mail."""
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()
