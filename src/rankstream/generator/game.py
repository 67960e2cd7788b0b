"""The ``game`` scenario: a user-score stream of players in teams, some of them streaky.

The design notes' mobile-game pipeline (top teams, top players, hot streakers, team MVPs)
reads a stream of score events; this model makes one. It is pure like every live model
(:mod:`rankstream.generator.live`): batch ``index`` draws from a generator seeded with
``(spec.seed, index, GAME_STREAM)``, and which players are on a streak is a function of the
event time alone, so the same call gives the same events and bytes. The model:

- *Players and teams*: ``players`` players, each in one team for good (stable membership;
  team sizes Zipf(``team_skew``) over ``teams`` teams) and from one home region.
- *Activity*: a player's share of the events is Zipf(``activity_zipf``) over a shuffled
  order of the players, so a few play a lot and most a little.
- *Skill*: each player's mean points per event is ``mean_score`` times a log-normal
  (``skill_sigma``) skill; a score event's points are a gamma draw around that mean,
  rounded to an integer of at least 1.
- *Streaks*: ``streaky_players`` players, drawn from the less active nine tenths, each go
  on a streak of ``streak_duration_s`` once every ``streak_every_s`` (each at its own
  phase of that cycle, on the epoch clock): while on it their event rate is multiplied by
  ``streak_boost``, then it calms back. So a short window over a streak holds far more of
  their events per minute than a long window around it ("hot streakers").
- *Time*: events are spread in order over the ``jitter_ms`` before ``now_ms``.

Events carry no malformed, late or duplicate rows (the ``views`` scenario exercises those).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Final, Self

import msgspec
import numpy as np
import numpy.typing as npt

from rankstream.errors import require
from rankstream.generator.live import ScenarioBatch
from rankstream.generator.sampling import cdf, draw, spread, zipf_weights
from rankstream.generator.traffic import REGION_CODES, SECOND, diurnal_multiplier

GAME_STREAM: Final = 0x6A3E
"""Mixed into every seed of this model, so its draws never repeat another scenario's."""

_TEAM_ADJECTIVES: Final = (
    "Crimson", "Silent", "Golden", "Iron", "Electric", "Midnight", "Frozen", "Savage",
    "Lucky", "Rapid", "Shadow", "Cosmic", "Wild", "Royal", "Neon", "Atomic",
)  # fmt: skip
_TEAM_NOUNS: Final = (
    "Foxes", "Titans", "Ravens", "Dragons", "Wolves", "Comets", "Vipers", "Knights",
    "Falcons", "Panthers", "Sharks", "Phantoms", "Rangers", "Hornets", "Giants", "Owls",
)  # fmt: skip


class ScoreEvent(msgspec.Struct, gc=False):
    """One score event as it goes on the wire (the notes' ``user_scores`` row)."""

    event_id: str
    timestamp: int
    user_id: str
    team_id: str
    team_name: str
    score: int
    region: str


@dataclass(frozen=True, slots=True)
class GameSpec:
    """What game traffic to make; see the module docstring. Durations in ``_s`` are
    seconds, ``jitter_ms`` milliseconds."""

    players: int = 5_000
    teams: int = 100
    team_skew: float = 0.6
    activity_zipf: float = 0.9
    mean_score: float = 50.0
    skill_sigma: float = 0.6
    streaky_players: int = 20
    streak_every_s: float = 3600.0
    streak_duration_s: float = 300.0
    streak_boost: float = 25.0
    regions: int = 30
    jitter_ms: int = 1 * SECOND
    seed: int = 7
    run: str = ""
    """Prefix of every ``event_id`` (the sender gives each run its own)."""

    def validate(self) -> None:
        """Raise :class:`~rankstream.errors.ConfigError` naming the first bad setting."""
        checks = [
            (self.players >= 1 and self.teams >= 1, "players and teams must be >= 1"),
            (self.seed >= 0, "seed must be >= 0"),
            (self.team_skew >= 0 and self.activity_zipf >= 0, "skews must be >= 0"),
            (self.mean_score >= 1 and self.skill_sigma >= 0, "need mean_score >= 1"),
            (0 <= self.streaky_players <= self.players, "streaky_players must be 0 to players"),
            (
                0 < self.streak_duration_s < self.streak_every_s,
                "need 0 < streak_duration_s < streak_every_s",
            ),
            (self.streak_boost >= 1, "streak_boost must be >= 1"),
            (1 <= self.regions <= len(REGION_CODES), "regions must be 1 to 30"),
            (self.jitter_ms >= 1, "jitter_ms must be >= 1"),
        ]
        require(checks, "game spec")


class GameModel:
    """Makes the score events of ``spec`` (see the module docstring). Building it draws the
    players, teams, skills and streak phases; after that every method is pure."""

    def __init__(self, spec: GameSpec, start_ms: int = 0) -> None:
        spec.validate()
        self.spec = spec
        self.start_ms = start_ms
        rng = np.random.default_rng((spec.seed, GAME_STREAM, 0))
        numbers = rng.permutation(spec.players)
        self.player_ids: list[str] = [f"player-{n:06d}" for n in numbers.tolist()]
        """Player ``i``'s ``user_id``; ``i`` is also its activity rank (0: most active)."""
        self.team_ids: list[str] = [f"team-{t:03d}" for t in range(spec.teams)]
        names = [f"{a} {n}" for a in _TEAM_ADJECTIVES for n in _TEAM_NOUNS]
        picks = rng.permutation(len(names))
        self.team_names: list[str] = [
            f"{names[picks[t % len(names)]]}{'' if t < len(names) else f' {t // len(names)}'}"
            for t in range(spec.teams)
        ]
        self.team_of: npt.NDArray[np.int64] = draw(
            cdf(zipf_weights(spec.teams, spec.team_skew)), spec.players, rng
        )
        """Player -> its team (index into :attr:`team_ids`), for good."""
        self._region_of = draw(cdf(zipf_weights(spec.regions, 1.2)), spec.players, rng)
        skill = np.exp(rng.normal(0.0, spec.skill_sigma, spec.players))
        self._mean_score = spec.mean_score * skill
        self._weights = zipf_weights(spec.players, spec.activity_zipf)
        self._cdf = cdf(self._weights)
        calm = np.arange(spec.players // 10, spec.players)
        chosen = rng.choice(calm, size=min(spec.streaky_players, len(calm)), replace=False)
        self.streaky: npt.NDArray[np.int64] = np.sort(chosen).astype(np.int64)
        """The streaky players (indices into :attr:`player_ids`)."""
        self._cycle_ms = round(spec.streak_every_s * 1000)
        self._streak_ms = round(spec.streak_duration_s * 1000)
        self._phase = rng.integers(0, self._cycle_ms, len(self.streaky))
        self._user_ids = np.array(self.player_ids, dtype=object)
        self._team_id_of = np.array(self.team_ids, dtype=object)[self.team_of]
        self._team_name_of = np.array(self.team_names, dtype=object)[self.team_of]
        self._region_name_of = np.array(REGION_CODES, dtype=object)[self._region_of]

    def starting_at(self, start_ms: int) -> Self:
        """The same model for a run starting at ``start_ms`` (streaks follow the epoch
        clock, so nothing else changes)."""
        moved = copy.copy(self)
        moved.start_ms = start_ms
        return moved

    def rate_multiplier(self, now_ms: int) -> float:
        """The diurnal rate factor (:func:`~rankstream.generator.traffic.diurnal_multiplier`)."""
        return diurnal_multiplier(now_ms)

    def on_streak(self, now_ms: int) -> npt.NDArray[np.int64]:
        """The streaky players (indices) on a streak at ``now_ms``."""
        into_cycle = (now_ms - self._phase) % self._cycle_ms
        return self.streaky[into_cycle < self._streak_ms]

    def streaks(self, player: int, from_ms: int, to_ms: int) -> list[tuple[int, int]]:
        """The streaks ``[start, end)`` of streaky ``player`` (an index) that start in
        ``[from_ms, to_ms)``; none for a player who is not streaky."""
        where = np.flatnonzero(self.streaky == player)
        if len(where) == 0:
            return []
        phase = int(self._phase[where[0]])
        first = from_ms + (phase - from_ms) % self._cycle_ms
        return [(s, s + self._streak_ms) for s in range(first, to_ms, self._cycle_ms)]

    def batch(self, index: int, size: int, now_ms: int) -> ScenarioBatch:
        """Batch ``index`` (``>= 0``) of ``size`` score events made at wall time ``now_ms``.

        Pure. Event ids are ``{spec.run}{index:x}-{row:x}``; the Kafka key is the
        ``user_id``. Who is on a streak is decided by ``now_ms``.
        """
        if index < 0 or size < 0:
            raise ValueError("index and size must be >= 0")
        spec = self.spec
        rng = np.random.default_rng((spec.seed, GAME_STREAM, index + 1))
        hot = self.on_streak(now_ms)
        if len(hot):
            weights = self._weights.copy()
            weights[hot] *= spec.streak_boost
            players = draw(cdf(weights), size, rng)
        else:
            players = draw(self._cdf, size, rng)
        shape = 2.0
        points = rng.gamma(shape, self._mean_score[players] / shape)
        scores = np.maximum(1, np.rint(points)).astype(np.int64)
        stamps = spread(now_ms, spec.jitter_ms, size, rng)
        user_ids: list[str] = self._user_ids[players].tolist()
        prefix = f"{spec.run}{index:x}-"
        events: list[msgspec.Struct] = [
            ScoreEvent(f"{prefix}{row:x}", t, u, team, name, s, r)
            for row, (t, u, team, name, s, r) in enumerate(
                zip(
                    stamps.tolist(),
                    user_ids,
                    self._team_id_of[players].tolist(),
                    self._team_name_of[players].tolist(),
                    scores.tolist(),
                    self._region_name_of[players].tolist(),
                    strict=True,
                )
            )
        ]
        return ScenarioBatch(index, now_ms, events, user_ids)
