"""Withdrawals and deposits of the simulated venues (replay and paper), written once.

A simulated venue joins the run's :class:`~arbsim.core.transfers.TransferNetwork` with
its exact :class:`~exchanges.simulated.matching.Account` and its configured routes
(``venues[].transfers``) and then is a :class:`~arbsim.core.ports.TransferVenue`: a
withdrawal debits ``amount + fee`` from the account's free balance when it is sent, the
destination account is credited ``amount`` after the drawn delay, on the run's clock.
"""

from __future__ import annotations

from collections.abc import Mapping

from arbsim.core.errors import InvalidOrder
from arbsim.core.model import Deposit, Transfer, WithdrawalTerms, WithdrawRequest
from arbsim.core.transfers import TransferNetwork, TransferRoute
from exchanges.simulated.matching import Account


class SimulatedTransfers:
    """The :class:`~arbsim.core.ports.TransferVenue` side of a simulated venue."""

    name: str
    account: Account
    transfer_network: TransferNetwork | None = None

    def join_network(
        self, network: TransferNetwork, routes: Mapping[str, Mapping[str, TransferRoute]]
    ) -> None:
        """Put this venue's account on ``network`` with its withdrawal ``routes``."""
        network.join(self.name, self.account, routes)
        self.transfer_network = network

    def _network(self) -> TransferNetwork:
        if self.transfer_network is None:
            raise InvalidOrder(
                f"{self.name}: this run has no simulated transfer network",
                code="no_transfers",
                venue=self.name,
            )
        return self.transfer_network

    async def withdrawal_terms(self, asset: str, network: str) -> WithdrawalTerms:
        return self._network().terms(self.name, asset, network)

    async def deposit_address(self, asset: str, network: str) -> str:
        return self._network().address(self.name, asset, network)

    def check_withdrawal(self, asset: str, network: str, address: str | None = None) -> None:
        # no local policy: the run's transfer network refuses what its routes do not allow
        self._network()

    async def withdraw(self, req: WithdrawRequest) -> Transfer:
        return self._network().withdraw(self.name, req)

    async def fetch_withdrawal(self, client_id: str) -> Transfer:
        return self._network().withdrawal(self.name, client_id)

    async def fetch_deposits(self, asset: str | None, since_ns: int) -> list[Deposit]:
        return self._network().deposits(self.name, asset, since_ns)

    def describe_transfers(self) -> dict[str, str]:
        text = self.transfer_network.describe(self.name) if self.transfer_network else ""
        return {"transfers": text} if text else {}
