"""Withdrawals of the live venues: the local safety policy and the bookkeeping that keeps a
retried withdrawal from being sent twice.

:class:`WithdrawPolicy` is checked before any request: withdrawals must be allowed
(``allow_withdrawals: true`` in the venue's config) and the address must be on the
config's allow-list for the asset and network (``withdraw_addresses``).

:class:`WithdrawalLog` remembers, per client id, whether a withdrawal was acknowledged or
its outcome is unknown (a 5xx, a timeout, a lost answer). A venue finds a withdrawal by our
id (MEXC ``withdrawOrderId``, Gate ``withdraw_order_id``) and ``LiveVenue.withdraw`` asks
it first, so a client id already used is never sent again: the venue's record is returned,
or, when the venue does not list it and this process's earlier attempt had no known
outcome, :class:`~arbsim.core.errors.OutcomeUnknown` again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from arbsim.core.errors import InvalidOrder
from arbsim.core.model import WithdrawRequest

__all__ = [
    "AddressBook",
    "Attempt",
    "WithdrawPolicy",
    "WithdrawalLog",
    "check_address_book",
    "net_minimum",
]

AddressBook = Mapping[str, Mapping[str, list[str]]]
"""Asset -> network -> the addresses withdrawals may go to."""

Attempt = Literal["sending", "sent", "unknown"]


def check_address_book(book: AddressBook) -> None:
    """Refuse an allow-list of the wrong shape (``ValueError`` naming the entry)."""
    for asset, networks in book.items():
        if not asset or asset != asset.upper():
            raise ValueError(f"withdraw_addresses: asset {asset!r} must be upper case")
        for network, addresses in networks.items():
            if not network:
                raise ValueError(f"withdraw_addresses[{asset}]: a network must be named")
            if not addresses:
                raise ValueError(f"withdraw_addresses[{asset}][{network}]: no address listed")
            for address in addresses:
                if not address or address != address.strip():
                    raise ValueError(
                        f"withdraw_addresses[{asset}][{network}]: {address!r} is not an "
                        "address (empty or with blanks around it)"
                    )


@dataclass(frozen=True)
class WithdrawPolicy:
    """What a live venue's config allows: withdrawals at all, and to which addresses.

    Attributes
    ----------
    allowed:
        ``allow_withdrawals`` of the venue's config (default off).
    addresses:
        ``withdraw_addresses``: asset -> network -> allowed addresses.
    """

    allowed: bool = False
    addresses: AddressBook = field(default_factory=dict)

    def permit(self, venue: str, asset: str, network: str, address: str | None = None) -> None:
        """Refuse locally (:class:`InvalidOrder`, naming the config field) unless
        withdrawals are allowed, and (given ``address``) the address is on the list for
        ``asset`` on ``network``."""
        if not self.allowed:
            raise InvalidOrder(
                f"withdrawals are off for venue {venue}: set venues[{venue}].allow_withdrawals"
                " to true (and list the address in withdraw_addresses) to allow them",
                code="withdrawals_disabled",
                venue=venue,
            )
        if address is None:
            return
        listed = self.addresses.get(asset, {}).get(network, [])
        if address not in listed:
            raise InvalidOrder(
                f"address {address} is not on venues[{venue}].withdraw_addresses"
                f"[{asset}][{network}]: withdrawal refused",
                code="address_not_allowed",
                venue=venue,
            )

    def check(self, req: WithdrawRequest, venue: str) -> None:
        """Refuse ``req`` locally (:class:`InvalidOrder`, naming the config field) unless
        withdrawals are allowed and its address is on the list; also a non-positive
        amount or an empty client id."""
        self.permit(venue, req.asset, req.network, req.address)
        if not req.client_id:
            raise InvalidOrder("a withdrawal needs a client_id", code="client", venue=venue)
        if not req.amount.is_finite() or req.amount <= 0:
            raise InvalidOrder(
                f"withdrawal amount must be above 0, got {req.amount}", code="client", venue=venue
            )


class WithdrawalLog:
    """Client id -> what became of our withdrawal request (this process's memory)."""

    def __init__(self) -> None:
        self.attempts: dict[str, Attempt] = {}
        self.requests: dict[str, WithdrawRequest] = {}

    def seen(self, client_id: str) -> Attempt | None:
        """What the earlier request with ``client_id`` came to (None: never sent)."""
        return self.attempts.get(client_id)

    def sending(self, req: WithdrawRequest) -> None:
        """``req`` is about to be sent."""
        self.attempts[req.client_id] = "sending"
        self.requests[req.client_id] = req

    def acknowledged(self, client_id: str) -> None:
        """The venue accepted it."""
        self.attempts[client_id] = "sent"

    def unknown(self, client_id: str) -> None:
        """Its outcome is unknown (the venue may have it)."""
        self.attempts[client_id] = "unknown"

    def refused(self, client_id: str) -> None:
        """The venue refused it (nothing was created): the id may be used again."""
        self.attempts.pop(client_id, None)
        self.requests.pop(client_id, None)

    def asset_of(self, client_id: str) -> str | None:
        """The asset of a withdrawal we sent (narrows the venue's history query)."""
        req = self.requests.get(client_id)
        return req.asset if req is not None else None


def net_minimum(venue_minimum: Decimal, fee: Decimal) -> Decimal:
    """A venue minimum on the amount *with* the fee, as a minimum on the amount received
    (``amount + fee >= venue_minimum``)."""
    return max(Decimal(0), venue_minimum - fee)
