"""Contract tests of agent run scores (docs/services/ai-run-state.md#scores, spec 05 items 1-5)."""

from __future__ import annotations

import asyncio
import math

import pytest

from pikku_storage import Storage
from pikku_storage.clock import ManualClock
from pikku_storage.errors import InvalidValue, RunNotFound
from pikku_storage.records import AgentRunScore
from pikku_testing._types import StorageFactory
from pikku_testing.contract._builders_ai import (
    NON_JSON,
    T0,
    UNKNOWN_RUN_ID,
    at,
    make_run,
    make_thread,
    user,
    wrong,
)

__all__ = ["ScoreTests"]


async def _run(storage: Storage) -> str:
    await make_thread(storage)
    return await make_run(storage)


def _score(run_id: str, score: float, *, scorer: str = "helpfulness", ms: int = 0) -> AgentRunScore:
    return AgentRunScore(run_id=run_id, scorer_name=scorer, score=score, created_at=at(ms))


class ScoreTests:
    """`save_score` and `get_scores`: an append-only log per agent run."""

    async def test_save_score_returns_the_record_get_scores_reads(self, storage: Storage) -> None:
        """Spec 05 §5 item 1."""
        state = storage.ai_run_state
        run_id = await _run(storage)
        saved = await state.save_score(
            run_id, "helpfulness", 0.75, reason="clear", metadata={"sub": {"a": 0.9}}
        )
        assert saved == AgentRunScore(
            run_id=run_id,
            scorer_name="helpfulness",
            score=0.75,
            reason="clear",
            metadata={"sub": {"a": 0.9}},
            created_at=T0,
        )
        assert await state.get_scores(run_id) == [saved]

    async def test_save_score_without_reason_or_metadata_reads_none(self, storage: Storage) -> None:
        """Spec 05 §5 item 1."""
        run_id = await _run(storage)
        saved = await storage.ai_run_state.save_score(run_id, "tone", 0.5)
        assert saved == _score(run_id, 0.5, scorer="tone")
        assert await storage.ai_run_state.get_scores(run_id) == [saved]

    @pytest.mark.parametrize("value", [0.1, 1 / 3, 0.123456789, 0, 1.0, 5e-324])
    async def test_scores_read_back_equal_to_the_float_saved(
        self, storage: Storage, value: float
    ) -> None:
        """Spec 05 §5 item 1."""
        run_id = await _run(storage)
        await storage.ai_run_state.save_score(run_id, "s", value)
        [read] = await storage.ai_run_state.get_scores(run_id)
        assert read.score == value
        assert type(read.score) is float

    async def test_an_int_score_reads_as_a_float_and_negative_zero_as_zero(
        self, storage: Storage
    ) -> None:
        """Spec 05 §5 item 1."""
        state = storage.ai_run_state
        run_id = await _run(storage)
        saved = await state.save_score(run_id, "s", 1)
        assert type(saved.score) is float
        await state.save_score(run_id, "s", -0.0)
        one, zero = await state.get_scores(run_id)
        assert (type(one.score), one.score) == (float, 1.0)
        assert zero.score == 0.0
        assert math.copysign(1.0, zero.score) == 1.0

    async def test_two_grades_by_one_scorer_are_both_kept_in_order(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """Spec 05 §5 item 2."""
        state = storage.ai_run_state
        run_id = await _run(storage)
        await state.save_score(run_id, "s", 0.2)
        pikku_clock.advance(1)
        await state.save_score(run_id, "s", 0.8)
        assert await state.get_scores(run_id) == [
            _score(run_id, 0.2, scorer="s"),
            _score(run_id, 0.8, scorer="s", ms=1000),
        ]

    async def test_same_millisecond_scores_keep_insertion_order(self, storage: Storage) -> None:
        """Spec 05 §5 item 2."""
        state = storage.ai_run_state
        run_id = await _run(storage)
        values = [0.9, 0.1, 0.5, 0.3]
        for value in values:
            await state.save_score(run_id, "s", value)
        assert [score.score for score in await state.get_scores(run_id)] == values

    async def test_a_score_saved_with_the_clock_set_back_sorts_first(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """Spec 05 §5 item 2."""
        state = storage.ai_run_state
        run_id = await _run(storage)
        pikku_clock.set(at(5000))
        await state.save_score(run_id, "s", 0.2)
        pikku_clock.set(at(1000))
        await state.save_score(run_id, "s", 0.8)
        assert await state.get_scores(run_id) == [
            _score(run_id, 0.8, scorer="s", ms=1000),
            _score(run_id, 0.2, scorer="s", ms=5000),
        ]

    async def test_scores_of_one_run_do_not_reach_another(self, storage: Storage) -> None:
        """Spec 05 §5 item 2."""
        state = storage.ai_run_state
        first = await _run(storage)
        second = await make_run(storage)
        await state.save_score(first, "s", 0.2)
        assert await state.get_scores(second) == []

    @pytest.mark.parametrize("run_id", [UNKNOWN_RUN_ID, "not-a-uuid", UNKNOWN_RUN_ID.upper()])
    async def test_save_score_on_an_unknown_run_raises_run_not_found(
        self, storage: Storage, run_id: str
    ) -> None:
        """Spec 05 §5 item 3."""
        await _run(storage)
        with pytest.raises(RunNotFound):
            await storage.ai_run_state.save_score(run_id, "s", 0.5)
        assert await storage.ai_run_state.get_scores(run_id) == []

    async def test_save_score_moves_neither_the_run_nor_the_thread(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """Spec 05 §5 item 3."""
        run_id = await _run(storage)
        run_before = await storage.ai_run_state.get_run(run_id)
        thread_before = await storage.agent_runs.get_thread("t-1")
        pikku_clock.advance(10)
        saved = await storage.ai_run_state.save_score(run_id, "s", 0.5)
        assert saved.created_at == at(10_000)
        assert await storage.ai_run_state.get_run(run_id) == run_before
        assert await storage.agent_runs.get_thread("t-1") == thread_before

    @pytest.mark.parametrize(
        "score",
        [-0.01, 1.0000001, math.nan, math.inf, -math.inf, True, False, "0.5", None, 2, -1, 10**400],
    )
    async def test_save_score_with_a_bad_score_raises_invalid_value(
        self, storage: Storage, score: object
    ) -> None:
        """Spec 05 §5 item 4."""
        run_id = await _run(storage)
        with pytest.raises(InvalidValue):
            await storage.ai_run_state.save_score(run_id, "s", wrong(score))
        assert await storage.ai_run_state.get_scores(run_id) == []

    @pytest.mark.parametrize(
        ("scorer", "reason", "metadata"),
        [
            ("", None, None),
            ("x" * 256, None, None),
            (None, None, None),
            ("s", "a\x00b", None),
            ("s", 5, None),
            ("s", None, [1, 2]),
            ("s", None, "{}"),
            ("s", None, {"v": NON_JSON["set"]}),
        ],
    )
    async def test_save_score_with_a_bad_field_raises_invalid_value(
        self, storage: Storage, scorer: object, reason: object, metadata: object
    ) -> None:
        """Spec 05 §5 item 4."""
        run_id = await _run(storage)
        with pytest.raises(InvalidValue):
            await storage.ai_run_state.save_score(
                run_id, wrong(scorer), 0.5, reason=wrong(reason), metadata=wrong(metadata)
            )
        assert await storage.ai_run_state.get_scores(run_id) == []

    async def test_save_score_accepts_a_255_character_scorer_and_empty_reason(
        self, storage: Storage
    ) -> None:
        """Spec 05 §5 item 4."""
        run_id = await _run(storage)
        saved = await storage.ai_run_state.save_score(run_id, "x" * 255, 0.5, reason="")
        assert await storage.ai_run_state.get_scores(run_id) == [saved]

    async def test_delete_thread_of_storage_removes_the_scores(self, storage: Storage) -> None:
        """Spec 05 §5 item 5."""
        run_id = await _run(storage)
        await storage.ai_run_state.save_score(run_id, "s", 0.5)
        await storage.ai_storage.delete_thread("t-1")
        assert await storage.ai_run_state.get_scores(run_id) == []
        await make_thread(storage)
        new_run = await make_run(storage)
        assert await storage.ai_run_state.get_scores(new_run) == []
        assert await storage.ai_run_state.get_scores(run_id) == []

    async def test_delete_thread_of_the_console_removes_the_scores(self, storage: Storage) -> None:
        """Spec 05 §5 item 5."""
        run_id = await _run(storage)
        await storage.ai_run_state.save_score(run_id, "s", 0.5)
        assert await storage.agent_runs.delete_thread("t-1") is True
        assert await storage.ai_run_state.get_scores(run_id) == []
        with pytest.raises(RunNotFound):
            await storage.ai_run_state.save_score(run_id, "s", 0.5)

    async def test_prune_threads_removes_the_scores(
        self, storage: Storage, pikku_clock: ManualClock
    ) -> None:
        """Spec 05 §5 item 5."""
        old_run = await _run(storage)
        await storage.ai_run_state.save_score(old_run, "s", 0.5)
        pikku_clock.advance(60)
        await make_thread(storage, "t-2")
        kept_run = await make_run(storage, "t-2")
        await storage.ai_run_state.save_score(kept_run, "s", 0.25)
        assert await storage.agent_runs.prune_threads(updated_before=at(30_000)) == 1
        assert await storage.ai_run_state.get_scores(old_run) == []
        assert [s.score for s in await storage.ai_run_state.get_scores(kept_run)] == [0.25]

    async def test_concurrent_saves_over_two_instances_all_land(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """Spec 05 §5 item 5."""
        instances = [storage, await storage_factory()]
        run_id = await _run(storage)
        await asyncio.gather(
            *(instances[i % 2].ai_run_state.save_score(run_id, f"s-{i}", i / 20) for i in range(20))
        )
        scores = await storage.ai_run_state.get_scores(run_id)
        assert sorted(score.scorer_name for score in scores) == sorted(f"s-{i}" for i in range(20))
        assert {score.score for score in scores} == {i / 20 for i in range(20)}

    async def test_a_save_racing_delete_thread_leaves_no_score(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        """Spec 05 §5 item 5."""
        other = await storage_factory()
        run_id = await _run(storage)
        await storage.ai_storage.save_messages("t-1", [user()])
        outcomes = await asyncio.gather(
            *(other.ai_run_state.save_score(run_id, "s", 0.5) for _ in range(5)),
            storage.agent_runs.delete_thread("t-1"),
            *(other.ai_run_state.save_score(run_id, "s", 0.5) for _ in range(5)),
            return_exceptions=True,
        )
        for outcome in outcomes:
            assert not isinstance(outcome, BaseException) or isinstance(outcome, RunNotFound)
        assert await storage.ai_run_state.get_scores(run_id) == []
        assert await storage.agent_runs.get_thread("t-1") is None
