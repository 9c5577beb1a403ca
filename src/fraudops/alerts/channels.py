"""Where alerts go: e-mail over SMTP and webhooks (Slack-compatible JSON with the event).

A channel sends a message or raises; the sender decides about retries.
"""

import smtplib
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import unquote, urlsplit

import httpx

from fraudops.alerts.events import AlertEvent
from fraudops.config import Settings

TIMEOUT_SECONDS = 10.0


class AlertDeliveryError(RuntimeError):
    """A channel could not deliver an alert; the message never holds a secret."""


class Channel(Protocol):
    """Somewhere alerts are delivered to."""

    @property
    def name(self) -> str:
        """The channel's name, for logs."""
        ...

    def send(self, event: AlertEvent) -> None:
        """Deliver one alert, or raise AlertDeliveryError."""
        ...


@dataclass(frozen=True)
class SmtpAddress:
    """Where an SMTP server listens, and the login if it wants one."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log line

    @classmethod
    def parse(cls, url: str) -> "SmtpAddress":
        """An address from smtp://[user:password@]host[:port]."""
        parts = urlsplit(url)
        if parts.scheme != "smtp" or not parts.hostname:
            msg = "FRAUDOPS_SMTP_URL must look like smtp://host:port"
            raise ValueError(msg)
        try:
            port = parts.port or 25
        except ValueError:
            msg = "FRAUDOPS_SMTP_URL has an invalid port"
            raise ValueError(msg) from None
        return cls(
            host=parts.hostname,
            port=port,
            username=None if parts.username is None else unquote(parts.username),
            password=None if parts.password is None else unquote(parts.password),
        )


@dataclass(frozen=True, kw_only=True)
class EmailChannel:
    """Alerts as plain-text e-mails through an SMTP server."""

    address: SmtpAddress
    sender: str
    recipients: tuple[str, ...]
    timeout: float = TIMEOUT_SECONDS
    name: str = "email"

    def send(self, event: AlertEvent) -> None:
        """Send the alert as one e-mail to every recipient."""
        message = EmailMessage()
        message["Subject"] = f"[fraudops] {event.subject}"
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["X-Fraudops-Dedup-Key"] = event.dedup_key
        message.set_content(event.message)
        try:
            with smtplib.SMTP(self.address.host, self.address.port, timeout=self.timeout) as smtp:
                if self.address.username is not None:
                    smtp.login(self.address.username, self.address.password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as error:
            msg = (
                f"e-mail to {self.address.host}:{self.address.port} failed: {type(error).__name__}"
            )
            raise AlertDeliveryError(msg) from error


@dataclass(frozen=True, kw_only=True)
class WebhookChannel:
    """Alerts posted as JSON: a Slack-compatible "text" and the structured event."""

    urls: tuple[str, ...]
    client: httpx.Client
    name: str = "webhook"

    def send(self, event: AlertEvent) -> None:
        """Post the alert to every URL; fails if any URL does not take it."""
        body = {"text": f"*{event.subject}*\n{event.message}", "event": event.as_dict()}
        failed = []
        for number, url in enumerate(self.urls, start=1):
            try:
                response = self.client.post(url, json=body)
                response.raise_for_status()
            except httpx.HTTPError as error:
                # The URL itself may hold a token (Slack's do): name the webhook by position.
                failed.append(f"webhook {number}: {type(error).__name__}")
        if failed:
            raise AlertDeliveryError("; ".join(failed))


def channels_from_settings(
    settings: Settings, *, client: httpx.Client | None = None
) -> list[Channel]:
    """The channels the settings configure (none when alerts are off)."""
    channels: list[Channel] = []
    if settings.smtp_url is not None and settings.alert_email_recipients:
        channels.append(
            EmailChannel(
                address=SmtpAddress.parse(settings.smtp_url.get_secret_value()),
                sender=settings.alert_email_from,
                recipients=settings.alert_email_recipients,
            )
        )
    if settings.alert_webhook_list:
        channels.append(
            WebhookChannel(
                urls=settings.alert_webhook_list,
                client=client or httpx.Client(timeout=TIMEOUT_SECONDS),
            )
        )
    return channels


def describe(channels: Sequence[Channel]) -> str:
    """The channels' names, for logs."""
    return ", ".join(channel.name for channel in channels) or "none"
