"""The Reason-IAD loop: knowledge-conditioned prompt, entropy-guided latent think tokens, dynamic visual injection.

`Reasoner(backend, config).start(request)` runs the prefix once and returns a `Session`; `session.iterate()`
streams typed `ReasoningStep`s (stop early by breaking out), `session.result()` decodes with the best latents
*and* the kept patches and returns the `Inspection`. `Reasoner.run(request)` does all three.
Every step evaluates its candidates (the current latents, antithetic noise samples, one injection trial per
latent) in one batched suffix forward over the shared prefix cache. Before step 1 the injection is seeded: one
probe forward of the initial latents proposes the first patches (as DMLR does), and like every later trial they
are kept only if they raise the reward.
Every tensor the engine makes lives on the backend's device; Z and the update arithmetic stay fp32 and are cast to
the model's dtype only when written into the suffix embeddings.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from reason_iad.config import ReasoningConfig
from reason_iad.errors import UserError
from reason_iad.reasoning import patches as patch_ops
from reason_iad.reasoning import reward as rewards
from reason_iad.reasoning import suffix as rows
from reason_iad.reasoning.prompt import build_messages
from reason_iad.reasoning.rationale import rationale_tail, strip_option_echo
from reason_iad.reasoning.request import NO_EVIDENCE_PRIOR, RATIONALE_TURN_POSITIONS, InspectionRequest, query_index
from reason_iad.reasoning.update import Step, antithetic_noise, clip_step, es_gradient, es_step
from reason_iad.types import InjectedPatch, Inspection, ReasoningStep, Timings


@dataclass(frozen=True)
class _Evaluation:
    rewards: torch.Tensor  # [C]
    components: dict[str, torch.Tensor]  # name -> [C]
    option_probs: torch.Tensor  # [C, n]
    latent_entropy: torch.Tensor | None  # [C, L], normalised to [0, 1]
    attention: torch.Tensor | None  # [R, n_query] of candidate 0 over the query image
    latent_hidden: torch.Tensor | None  # [L, D] of candidate 0


@dataclass
class _State:
    latents: torch.Tensor | None
    sigma: float
    kept: list[InjectedPatch] = field(default_factory=list)
    proposals: list[list[int]] = field(default_factory=list)
    best_reward: float = -math.inf
    best_latents: torch.Tensor | None = None
    best_patches: tuple[InjectedPatch, ...] = ()
    best_step: int = 0
    steps: list[ReasoningStep] = field(default_factory=list)
    steps_ms: float = 0.0


class Reasoner:
    """Runs Reason-IAD on any `Backend` with one `ReasoningConfig`."""

    def __init__(self, backend, config: ReasoningConfig) -> None:
        self.backend = backend
        self.config = config

    def start(self, request: InspectionRequest) -> Session:
        """Build the prompt and run the prefix once."""
        return Session(self.backend, self.config, request)

    def run(self, request: InspectionRequest) -> Inspection:
        """Start, run every step, decode: the whole inspection."""
        session = self.start(request)
        for _ in session.iterate():
            pass
        return session.result()


class Session:
    """One inspection in progress: the prefix, the latent state and the trace."""

    def __init__(self, backend, config: ReasoningConfig, request: InspectionRequest) -> None:
        started = time.perf_counter()
        self.backend, self.config, self.request = backend, config, request
        self.device = backend.device
        knowledge = request.knowledge if config.uses_knowledge else ()
        messages = build_messages(
            request.question, request.image, request.template, knowledge, evidence=request.evidence
        )
        self.prefix = backend.prepare(messages, reserve=self._reserved_positions())
        self.prefix_ms = (time.perf_counter() - started) * 1000
        self.query_index = query_index(messages, request.image)
        if len(self.prefix.images) <= self.query_index:
            raise UserError("the model did not receive the query image")
        self.query = self.prefix.images[self.query_index]
        self.prior, self.prior_used = self._anomaly_prior()
        self.unflagged = set() if self.prior is None else patch_ops.below_prior_gate(self.prior, config.prior_gate)
        self.header = backend.embed_tokens(self.prefix.assistant_header_ids)  # [H, D]
        self.letters = request.question.letters
        self._prepare_readout()
        self.generator = torch.Generator().manual_seed(config.seed)  # CPU draws, moved: same noise on every device
        latents = None
        if config.uses_latents:
            placeholder = torch.full((config.num_latent_tokens,), backend.latent_token_id, device=self.device)
            latents = backend.embed_tokens(placeholder).detach().float().clone()  # [L, D] fp32
        self.state = _State(latents=latents, sigma=config.sigma_scale * backend.embedding_rms)
        self.weights = dict(config.reward_weights)
        if latents is None:  # no latent rows to reward: the answer's entropy alone
            self.weights = {name: 1.0 for name, r in rewards.REWARDS.items() if not r.needs_latents}

    def _reserved_positions(self) -> int:
        """Positions needed after the prefix and the header: latents, the patch budget and the answer."""
        config = self.config
        reasoning = config.num_latent_tokens + config.patch_budget if config.uses_latents else 0
        return reasoning + config.max_new_tokens + RATIONALE_TURN_POSITIONS

    def _anomaly_prior(self) -> tuple[torch.Tensor | None, str]:
        """The anomaly prior per query token [n] on the device, and which prior patch proposals really use."""
        wanted = self.config.injection_prior
        if wanted == "attention":
            return None, "attention"
        if self.request.patch_prior is None:
            return None, NO_EVIDENCE_PRIOR
        prior = self.request.patch_prior(self.query.boxes)
        return torch.as_tensor(prior, device=self.device).float(), wanted

    def _prepare_readout(self) -> None:
        if self.config.readout == "letter":
            ids = self.backend.first_token_ids(self.letters)
            if len(set(ids)) != len(ids):
                raise UserError(f"the model's tokenizer does not give distinct tokens for the letters {self.letters}")
            self.option_ids = torch.tensor(ids, device=self.device)
            self.continuations: list[tuple[int, ...]] = []
        else:
            end = min(self.backend.end_token_ids)
            self.continuations = [
                tuple(self.backend.encode_text(t.strip())) + (end,) for _, t in self.request.question.options
            ]

    # ------------------------------------------------------------------ evaluation
    def _spec(self, latents: torch.Tensor | None, kept: list[InjectedPatch] | tuple) -> rows.RowSpec:
        embeddings = self.query.embeddings
        return rows.RowSpec(latents, tuple((p.latent, embeddings[p.token_index]) for p in kept))

    def _evaluate(self, specs: list[rows.RowSpec]) -> _Evaluation:
        """All candidates in one batched suffix forward, then read-out and rewards per candidate.

        Logits are computed only where they are read (answer and continuation positions of every row, latent
        positions of one row per candidate); attention or hidden states only for candidate 0, which proposes.
        """
        expanded = (
            specs
            if not self.continuations
            else [dataclasses.replace(s, continuation=c) for s in specs for c in self.continuations]
        )
        built = [rows.assemble_row(s, self.header, self.backend.embed_tokens) for s in expanded]
        layouts = [layout for _, layout in built]
        first = layouts[0]
        group = len(self.continuations) or 1
        heads = list(range(0, len(expanded), group))  # one row per candidate
        pairs = rows.logit_positions(layouts, heads if first.latent_positions else ())
        out = self.backend.suffix_forward(
            self.prefix,
            rows.pad_rows([e for e, _ in built]),
            logit_positions=pairs,
            attention_rows=(first.latent_positions or (first.answer_position,))
            if self.config.patch_scoring == "attention"
            else None,
            image_index=self.query_index,
            output_hidden=self.config.patch_scoring == "similarity",
        )
        kept = rows.KeptLogits(out.logits, tuple(pairs))
        if self.continuations:
            probs = rows.likelihood_probs(kept, layouts, group)
        else:
            probs = rows.letter_probs(kept, layouts, self.option_ids)
        latent_logits = entropy = hidden = None
        k = self.config.reward_top_k
        if first.latent_positions:
            latent_logits = rows.latent_logits(kept, layouts, heads)  # [C, L, V]
            entropy = rewards.normalised_topk_entropy(latent_logits, k)  # [C, L], for the trace and the reward
            if out.hidden is not None:
                hidden = out.hidden[list(first.latent_positions)]
        components = rewards.reward_components(rewards.RewardSignals(probs, latent_logits, entropy, k))
        return _Evaluation(
            rewards.combine_rewards(components, self.weights), components, probs, entropy, out.image_attention, hidden
        )

    # ------------------------------------------------------------------ steps
    def iterate(self) -> Iterator[ReasoningStep]:
        """Stream the `num_steps` reasoning steps; break out of the loop to stop early (the result stays valid)."""
        if self.state.latents is None:
            return
        if self.config.num_steps and not self.state.steps:
            self._seed_proposals()
        for step in range(1, self.config.num_steps + 1):
            started = time.perf_counter()
            if self.config.optimizer == "autograd":
                record = self._autograd_step(step, started)
            else:
                record = self._es_step(step, started)
            self.state.steps_ms += record.elapsed_ms
            self.state.steps.append(record)
            yield record

    def _seed_proposals(self) -> None:
        """Propose the first patches from a probe of the initial latents (DMLR's seeding): trials of step 1."""
        with torch.no_grad():
            self._propose(self._evaluate([self._spec(self.state.latents, ())]))

    def _trial_patches(self, step: int) -> list[list[InjectedPatch]]:
        state, config = self.state, self.config
        room = min(config.patches_per_step, config.patch_budget - len(state.kept))
        if not config.inject_patches or room <= 0:
            return []
        boxes = self.query.boxes
        return [
            [InjectedPatch(i, tuple(float(v) for v in boxes[i]), latent, step) for i in proposal[:room]]
            for latent, proposal in enumerate(state.proposals)
            if proposal
        ]

    def _es_step(self, step: int, started: float) -> ReasoningStep:
        state = self.state
        noise = antithetic_noise(
            self.config.num_noise_pairs,
            tuple(state.latents.shape),
            state.sigma,
            self.generator,
            device=state.latents.device,
        )
        candidates = [(state.latents, tuple(state.kept))] + [(state.latents + n, tuple(state.kept)) for n in noise]
        trials = self._trial_patches(step)
        candidates += [(state.latents, tuple(state.kept) + tuple(t)) for t in trials]
        with torch.no_grad():
            evaluation = self._evaluate([self._spec(z, kept) for z, kept in candidates])
        current, new = self._decide_injection(evaluation, len(candidates) - len(trials), trials)
        self._track_best(evaluation.rewards, candidates, step)
        sigma = state.sigma
        gradient = es_gradient(evaluation.rewards[1 : 1 + len(noise)], noise, state.sigma)
        update = es_step(state.latents, gradient, self._step_rms(), max_norm=self._max_step_norm())
        state.latents = update.latents
        state.sigma *= self.config.sigma_decay
        self._propose(evaluation)
        return self._record(step, evaluation, current, new, sigma, started, update)

    def _step_rms(self) -> float:
        """The learning rate in embedding units: each element of Z moves by about this much per step."""
        return self.config.learning_rate * self.backend.embedding_rms

    def _max_step_norm(self) -> float:
        """The safety rail: no step longer than the current exploration radius sigma * sqrt(L * D)."""
        return self.state.sigma * math.sqrt(self.state.latents.numel())

    def _decide_injection(self, evaluation: _Evaluation, first_trial: int, trials) -> tuple[int, tuple]:
        """Keep the best injection trial only if it beats the current latents; returns (row, new patches)."""
        if not trials:
            return 0, ()
        trial_rewards = evaluation.rewards[first_trial:]
        best = int(torch.argmax(trial_rewards))
        if float(trial_rewards[best]) <= float(evaluation.rewards[0]):
            return 0, ()
        gain = float(trial_rewards[best]) - float(evaluation.rewards[0])
        kept = tuple(dataclasses.replace(p, gain=gain) for p in trials[best])
        self.state.kept.extend(kept)
        return first_trial + best, kept

    def _track_best(self, candidate_rewards: torch.Tensor, candidates, step: int) -> None:
        """The best evaluated candidate, exactly as evaluated (not the post-update latents)."""
        best = int(torch.argmax(candidate_rewards))
        if float(candidate_rewards[best]) > self.state.best_reward:
            latents, kept = candidates[best]
            self.state.best_reward = float(candidate_rewards[best])
            self.state.best_latents = latents.detach().clone()
            recorded = {p.token_index: p for p in self.state.kept}  # the kept patches carry their gains
            self.state.best_patches = tuple(recorded.get(p.token_index, p) for p in kept)
            self.state.best_step = step

    def _propose(self, evaluation: _Evaluation) -> None:
        if evaluation.attention is not None:
            scores = evaluation.attention  # [L, n]
        elif evaluation.latent_hidden is not None:
            scores = patch_ops.similarity_scores(evaluation.latent_hidden, self.query.embeddings)
        else:
            self.state.proposals = []
            return
        if self.prior is not None:
            scores = patch_ops.mix_prior(
                scores, self.prior, 1.0 if self.config.injection_prior == "anomaly" else self.config.prior_weight
            )
        used = {p.token_index for p in self.state.kept} | self.unflagged
        self.state.proposals = patch_ops.propose_patches(scores, self.config.patches_per_step, used)

    def _record(
        self, step, evaluation: _Evaluation, row: int, new, sigma: float, started: float, update: Step
    ) -> ReasoningStep:
        components = {name: float(value[row]) for name, value in evaluation.components.items()}
        entropy = evaluation.latent_entropy[row].tolist() if evaluation.latent_entropy is not None else []
        probs = dict(zip(self.letters, evaluation.option_probs[row].tolist(), strict=True))
        return ReasoningStep(
            step=step,
            reward=float(evaluation.rewards[row]),
            reward_components=components,
            latent_entropy=tuple(entropy),
            option_probs=probs,
            best_reward=self.state.best_reward,
            injected=tuple(self.state.kept),
            new_patches=tuple(new),
            sigma=sigma,
            elapsed_ms=(time.perf_counter() - started) * 1000,
            clipped=update.clipped,
            step_norm=update.norm,
            prior=self.prior_used,
        )

    def _autograd_step(self, step: int, started: float) -> ReasoningStep:
        """Adam on Z through the frozen model (works with 4-bit weights); injection trials stay zeroth-order.

        Adam's learning rate is the same `lr * rms` as the ES step's per-element size, behind the same rail.
        """
        state = self.state
        if not hasattr(self, "_optimizer"):
            self._parameter = torch.nn.Parameter(state.latents.clone())
            self._optimizer = torch.optim.Adam([self._parameter], lr=self._step_rms(), maximize=True)
        trials = self._trial_patches(step)
        candidates = [(state.latents, tuple(state.kept))]
        candidates += [(state.latents, tuple(state.kept) + tuple(t)) for t in trials]
        with torch.no_grad():
            evaluation = self._evaluate([self._spec(z, kept) for z, kept in candidates])
        current, new = self._decide_injection(evaluation, 1, trials)
        self._track_best(evaluation.rewards, candidates, step)
        self._propose(evaluation)
        self._optimizer.zero_grad()
        self._evaluate([self._spec(self._parameter, state.kept)]).rewards[0].backward()
        self._optimizer.step()
        with torch.no_grad():
            moved, clipped = clip_step(self._parameter.detach() - state.latents, self._max_step_norm())
            self._parameter.copy_(state.latents + moved)
        state.latents = self._parameter.detach().clone()
        update = Step(state.latents, clipped, float(moved.norm()))
        return self._record(step, evaluation, current, new, state.sigma, started, update)

    # ------------------------------------------------------------------ final decode
    def _rationale(self, spec: rows.RowSpec, answer: str) -> str:
        """Greedy explanation after the answer, with the same latents and patches (see `rationale.py`)."""
        config, options = self.config, self.request.question.options
        if config.rationale == "none":
            return ""
        tail = rationale_tail(
            self.backend,
            self.prefix.assistant_header_ids,
            config.rationale,
            answer,
            dict(options)[answer],
            config.rationale_prompt,
        )
        embeds, _ = rows.assemble_row(spec, self.backend.embed_tokens(tail), self.backend.embed_tokens)
        generation = self.backend.generate(self.prefix, embeds[None], config.max_new_tokens, config.min_new_tokens)
        if config.rationale == "reply":  # the reply itself, its answer letter included
            return generation.text.strip()
        return strip_option_echo(generation.text, options, answer)

    def result(self) -> Inspection:
        """Decode with the best latents and the patches kept with them: answer, probabilities, rationale."""
        started = time.perf_counter()
        state = self.state
        have_best = state.best_latents is not None
        latents = state.best_latents if have_best else state.latents
        kept = state.best_patches if have_best else tuple(state.kept)
        spec = self._spec(latents, kept)
        with torch.no_grad():
            evaluation = self._evaluate([spec])
            probs = dict(zip(self.letters, evaluation.option_probs[0].tolist(), strict=True))
            answer = max(probs, key=probs.get)
            rationale = self._rationale(spec, answer)
        attention_map: tuple = ()
        if evaluation.attention is not None:
            grid = patch_ops.attention_grid(evaluation.attention.cpu(), self.query.grid)
            attention_map = tuple(tuple(row) for row in grid.tolist())
        decode_ms = (time.perf_counter() - started) * 1000
        timings = Timings.of(self.prefix_ms, state.steps_ms, len(state.steps), decode_ms)
        return Inspection(
            answer=answer,
            answer_text=dict(self.request.question.options)[answer],
            option_probs=probs,
            rationale=rationale,
            mode=self.config.mode,
            model=self.backend.name,
            steps=tuple(state.steps),
            best_step=state.best_step,
            injected=tuple(kept),
            attention_map=attention_map,
            timings=timings,
            config=dataclasses.asdict(self.config),
        )
