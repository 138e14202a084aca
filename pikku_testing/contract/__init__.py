"""The contract suite: one class per service, `FullContract` combining them (04-testing §3)."""

from __future__ import annotations

from pikku_testing.contract._base import ContractBase
from pikku_testing.contract._capabilities import Capability, requires

__all__ = ["Capability", "ContractBase", "requires"]
