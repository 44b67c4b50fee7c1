"""Transfers between the run's venues, the same way in every mode.

:class:`TransferDesk` (one per engine, ``Context.transfer``) sends a withdrawal from one
:class:`~arbsim.core.ports.TransferVenue` to another venue's deposit address, records it
(:class:`~arbsim.core.records.TransferRecord`, ``transfers.parquet``, journalled in paper
and live) and follows it by asking the venues, never by assuming: the source's own
record (``fetch_withdrawal``) says when it was sent (the ledger debits ``amount + fee``),
the destination's deposits (``fetch_deposits``, matched by transaction id) say when it
arrived (the ledger credits ``amount``). Until then the amount is in flight: counted in
the run's positions and value, in no venue's balances. At the end of a run
:meth:`TransferDesk.refresh` asks once more, so the ledger reconciles with the venues
with transfers still in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from decimal import Decimal
from typing import TYPE_CHECKING

from arbsim.core.errors import InvalidOrder, OrderNotFound, OutcomeUnknown, VenueError
from arbsim.core.model import Transfer, TransferStatus, WithdrawRequest
from arbsim.core.ports import TransferVenue
from arbsim.core.records import TransferRecord

if TYPE_CHECKING:
    from arbsim.runtime.engine import Engine

DEPOSIT_LOOKBACK_NS = 3_600 * 1_000_000_000
"""How long before a transfer's request its deposit is looked for (clock differences)."""


class TransferDesk:
    """Sends, follows and records the run's transfers (see the module docstring)."""

    def __init__(self, engine: Engine, poll_s: float = 1.0) -> None:
        self._engine = engine
        self.poll_s = poll_s
        self.records: dict[str, TransferRecord] = {}
        self._ids = itertools.count(1)
        self._followers: set[asyncio.Task[None]] = set()
        #: client id -> when a withdrawal request without an answer was sent (the venue
        #: may or may not have it: see :meth:`_not_found` and :meth:`settle`)
        self._unanswered: dict[str, int] = {}

    # ---------------------------------------------------------------- helpers
    def venue(self, name: str) -> TransferVenue:
        venue = self._engine.venues[name]
        if not isinstance(venue, TransferVenue):
            raise VenueError(f"{name} cannot send transfers", code="no_transfers", venue=name)
        return venue

    def can_transfer(self, name: str) -> bool:
        return isinstance(self._engine.venues.get(name), TransferVenue)

    def in_flight(self) -> list[TransferRecord]:
        """Transfers asked for or sent, not arrived (nor failed) yet."""
        return [r for r in self.records.values() if r.status in ("pending", "sent")]

    def _fee_quote(self, asset: str, fee: Decimal) -> float:
        marks, quote = self._engine.marks()
        if asset == quote:
            return float(fee)
        return float(fee) * marks.get(asset, 0.0)

    def _update(self, rec: TransferRecord) -> None:
        self._engine.recorder.transfer_update(rec)

    # ---------------------------------------------------------------- sending
    async def send(
        self,
        source: str,
        destination: str,
        asset: str,
        network: str,
        amount: Decimal,
        *,
        reason: str = "",
    ) -> TransferRecord:
        """Withdraw ``amount`` of ``asset`` from ``source`` to ``destination``'s deposit
        address on ``network``; returns the record (status ``sent`` once the source
        debited it, ``failed`` with the venue's reason when refused). Followed until it
        arrives by a background task."""
        engine = self._engine
        src = self.venue(source)
        dst = self.venue(destination)
        now = engine.clock.now_ns()
        try:
            # what the source may not send at all is refused before any request
            src.check_withdrawal(asset, network)
        except VenueError as e:
            refused: VenueError | None = e
        else:
            refused = None
        rec = TransferRecord(
            client_id=f"{engine.id_prefix}t{next(self._ids):05d}",
            venue=source,
            destination=destination,
            asset=asset,
            network=network,
            amount=str(amount),
            ts_requested=now,
            reason=reason,
        )
        if refused is not None:
            why = refused.code or type(refused).__name__
            rec.status, rec.reason = "failed", f"{why}: {refused}"
            self.records[rec.client_id] = rec
            engine.recorder.transfer_requested(rec)
            return rec
        try:
            rec.address = await dst.deposit_address(asset, network)
        except VenueError as e:
            rec.status, rec.reason = "failed", f"deposit address: {e}"
            self.records[rec.client_id] = rec
            engine.recorder.transfer_requested(rec)
            return rec
        self.records[rec.client_id] = rec
        engine.recorder.transfer_requested(rec)
        req = WithdrawRequest(
            client_id=rec.client_id,
            asset=asset,
            amount=amount,
            network=network,
            address=rec.address,
        )
        asked = engine.clock.now_ns()
        try:
            tr = await src.withdraw(req)
        except OutcomeUnknown:
            tr = None  # the source's record tells (followed below)
            self._unanswered[rec.client_id] = asked
        except asyncio.CancelledError:
            # stopped while the request may be on its way: the end of the run finds out
            self._unanswered[rec.client_id] = asked
            raise
        except VenueError as e:
            rec.status, rec.reason = "failed", f"{e.code or type(e).__name__}: {e}"
            self._update(rec)
            return rec
        if tr is not None:
            self._apply(rec, tr)
        if rec.status in ("pending", "sent"):
            self._follow(rec)
        return rec

    def _apply(self, rec: TransferRecord, tr: Transfer) -> bool:
        """The source's record of the withdrawal: the ledger debits it once it is sent.
        Returns whether anything changed."""
        ledger = self._engine.ledger
        changed = False
        if tr.tx_id and rec.tx_id != tr.tx_id:
            rec.tx_id, changed = tr.tx_id, True
        if tr.status is TransferStatus.FAILED and rec.status != "failed":
            if rec.status == "sent":  # the venue gave the funds back
                ledger.returned(rec.client_id, rec.venue, rec.asset, Decimal(rec.fee))
            rec.status, rec.reason = "failed", "the source venue cancelled it"
            return True
        if tr.status in (TransferStatus.SENT, TransferStatus.ARRIVED) and rec.status == "pending":
            rec.fee = str(tr.fee)
            rec.amount = str(tr.amount)
            rec.ts_sent = tr.ts_updated if tr.status is TransferStatus.SENT else tr.ts_requested
            rec.status = "sent"
            rec.fee_quote = self._fee_quote(rec.asset, tr.fee)
            ledger.sent(rec.client_id, rec.venue, rec.destination, rec.asset, tr.amount, tr.fee)
            changed = True
        if changed:
            self._update(rec)
        return changed

    async def _check(self, rec: TransferRecord) -> bool:
        """Ask the venues about one transfer; True when it changed."""
        changed = False
        if rec.status == "pending" or (rec.status == "sent" and not rec.tx_id):
            source = self.venue(rec.venue)
            try:
                tr = await source.fetch_withdrawal(rec.client_id)
            except OrderNotFound:
                return self._not_found(rec, source.order_expiry_ns)
            self._unanswered.pop(rec.client_id, None)
            changed = self._apply(rec, tr)
        if rec.status == "sent" and rec.tx_id:
            # the destination dates deposits on its own clock, which may be behind ours:
            # asked from well before the request (matched by transaction id anyway)
            since = rec.ts_requested - DEPOSIT_LOOKBACK_NS
            deposits = await self.venue(rec.destination).fetch_deposits(rec.asset, since)
            for d in deposits:
                if d.credited and d.tx_id == rec.tx_id:
                    # a venue's deposit time may be when it first saw the deposit (MEXC
                    # insertTime), to the second (Gate): never before it was sent
                    self._arrived(rec, max(d.ts, rec.ts_sent))
                    return True
        return changed

    def _not_found(self, rec: TransferRecord, expiry_ns: int) -> bool:
        """The source does not list the withdrawal. One whose request went unanswered
        and that is still not listed once the venue could no longer accept that request
        (``order_expiry_ns`` after it was sent: MEXC's recvWindow, Gate's signature
        window) never reached it: failed, nothing was debited. Otherwise the venue's
        history may not show it yet: asked again later. Returns whether it changed."""
        asked = self._unanswered.get(rec.client_id)
        if asked is None or self._engine.clock.now_ns() - asked < expiry_ns:
            return False
        del self._unanswered[rec.client_id]
        waited = (self._engine.clock.now_ns() - asked) / 1e9
        rec.status = "failed"
        rec.reason = (
            f"never received: the request went unanswered and {rec.venue} does not list "
            f"it {waited:.1f} s later"
        )
        self._update(rec)
        return True

    def _arrived(self, rec: TransferRecord, ts: int) -> None:
        self._engine.ledger.arrived(rec.client_id)
        rec.status = "arrived"
        rec.ts_arrived = ts
        rec.delay_s = (ts - rec.ts_sent) / 1e9
        self._update(rec)

    def _follow(self, rec: TransferRecord) -> None:
        task = self._engine.loop.create_task(self._watch(rec), name=f"transfer-{rec.client_id}")
        self._followers.add(task)
        task.add_done_callback(self._followers.discard)

    async def _watch(self, rec: TransferRecord) -> None:
        while rec.status in ("pending", "sent"):
            await asyncio.sleep(self.poll_s)
            try:
                await self._check(rec)
            except InvalidOrder as e:  # the venue does not know it: asking again won't help
                rec.reason = f"no longer followed: {e}"
                self._update(rec)
                return
            except VenueError as e:  # asked again at the next poll
                # reported (metrics, alerts) against the venue that failed, but not to the
                # risk gate: a wallet route failing does not stop the trading routes
                observer = self._engine.observer
                if observer is not None:
                    venue = e.venue if e.venue in self._engine.venues else rec.venue
                    observer.api_failure(venue, e)

    # ---------------------------------------------------------------- end and restart
    async def stop(self) -> None:
        """Stop following (the end of the run; :meth:`refresh` asks once more)."""
        for task in list(self._followers):
            task.cancel()
        await asyncio.gather(*self._followers, return_exceptions=True)

    async def settle(self, deadline: float) -> None:
        """No transfer is left with an unknown outcome at the end: every withdrawal
        whose request went unanswered is looked up until the source lists it or it is
        known never received, until ``deadline`` (loop time)."""
        loop = self._engine.loop
        for cid in list(self._unanswered):
            rec = self.records.get(cid)
            while rec is not None and rec.status == "pending" and cid in self._unanswered:
                with contextlib.suppress(VenueError):  # asked again, until the deadline
                    await self._check(rec)
                if rec.status != "pending" or cid not in self._unanswered:
                    break
                if loop.time() >= deadline:
                    self._engine.shutdown_errors.append(
                        f"transfer {cid}: outcome still unknown (not in {rec.venue}'s history)"
                    )
                    break
                await asyncio.sleep(self.poll_s)

    async def refresh(self) -> int:
        """Ask the venues about every transfer in flight; returns how many changed."""
        changed = 0
        for rec in self.in_flight():
            try:
                changed += await self._check(rec)
            except VenueError as e:
                self._engine.shutdown_errors.append(f"transfer {rec.client_id}: {e}")
        return changed

    def restore(self, records: list[TransferRecord], follow: bool) -> None:
        """Take back the transfers an earlier process of this run journalled: the ledger
        gets their debits and credits again and those in flight are followed."""
        ledger = self._engine.ledger
        for rec in records:
            self.records[rec.client_id] = rec
            self._engine.recorder.transfers.append(rec)
            if rec.status in ("sent", "arrived"):
                ledger.sent(
                    rec.client_id,
                    rec.venue,
                    rec.destination,
                    rec.asset,
                    Decimal(rec.amount),
                    Decimal(rec.fee),
                )
            if rec.status == "arrived":
                ledger.arrived(rec.client_id)
            if rec.status == "pending":
                # its request's answer, if any, died with the earlier process
                self._unanswered[rec.client_id] = rec.ts_requested
            if follow and rec.status in ("pending", "sent"):
                self._follow(rec)
        n = len(records)
        self._ids = itertools.count(n + 1)

    def summary(self) -> dict[str, object]:
        """Counts, fees (in quote, at each send's mark), delays and what is in flight."""
        recs = list(self.records.values())
        arrived = [r for r in recs if r.status == "arrived"]
        delays = [r.delay_s for r in arrived]
        flight: dict[str, Decimal] = {}
        for _, asset, amount in self._engine.ledger.in_flight.values():
            flight[asset] = flight.get(asset, Decimal(0)) + amount
        fees: dict[str, Decimal] = {}
        for r in recs:
            if r.status in ("sent", "arrived"):
                fees[r.asset] = fees.get(r.asset, Decimal(0)) + Decimal(r.fee)
        return {
            "count": len(recs),
            "sent": sum(1 for r in recs if r.status in ("sent", "arrived")),
            "arrived": len(arrived),
            "failed": sum(1 for r in recs if r.status == "failed"),
            "fees": {a: str(v) for a, v in sorted(fees.items())},
            "fees_quote": round(sum(r.fee_quote for r in recs if r.status != "failed"), 6),
            "mean_delay_s": round(sum(delays) / len(delays), 6) if delays else None,
            "max_delay_s": round(max(delays), 6) if delays else None,
            "in_flight_at_end": {a: str(v) for a, v in sorted(flight.items())},
        }
