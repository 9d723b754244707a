"""The profile checker's shared checks (a refusal names the key and its line; numbers against
core.spec.limits) and its model entries: source, task, dataset, workload, and the `generation:`
and `training:` mappings parsed into typed settings. core.session.profile_check reads the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from energy_console.core.models import bare_string_source, sources
from energy_console.core.spec.limits import limit, show_value
from energy_console.core.spec.profile import ModelEntry, ProfileError
from energy_console.core.spec.tasks import TASKS
from energy_console.core.spec.workloads import (
    GENERATE_TASKS,
    GenerationSettings,
    SettingError,
    TrainingSettings,
    Workload,
    generation_settings,
    training_settings,
)

WORKLOAD_NAMES = tuple(w.value for w in Workload)
# the keys every model entry may have; a source adds its own (ModelSource.option_keys)
ENTRY_KEYS = ("task", "dataset", "trust_remote_code", "workload", "generation", "training")
Settings = TypeVar("Settings", GenerationSettings, TrainingSettings)


def key_name(path: tuple) -> str:
    """`protocol.repeats`, `models[0].task`: a key path as a profile's reader would write it."""
    return ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")


class KeyChecker:
    """Refusals that name the key and its line, and the checks every section shares."""

    def __init__(self, lines: dict[tuple, int], source: str, base_dir: str):
        self.lines, self.source, self.base_dir = lines, source, base_dir

    def fail(self, path: tuple, problem: str) -> ProfileError:
        key = key_name(path)
        line = None
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                line = self.lines[path[:n]]
                break
        return ProfileError(key, problem, line, self.source)

    def mapping(self, value: Any, path: tuple, allowed: tuple[str, ...]) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping with keys {', '.join(allowed)}")
        for key in value:
            if key not in allowed:
                raise self.fail(
                    path + (key,), f"unknown key {key!r}; allowed here: {', '.join(allowed)}"
                )
        return value

    def number(self, value, path, key: str):
        """value checked against its range in core.spec.limits (limit(key)), as that kind."""
        rule = limit(key)
        problem = rule.problem(value)
        if problem:
            raise self.fail(path, problem)
        return rule.kind(value)

    def count(self, value, path, key: str) -> None:
        """A list's number of entries checked against core.spec.limits (other values: left to the
        caller's own check)."""
        if isinstance(value, list):
            problem = limit(key).problem(value)
            if problem:
                raise self.fail(path, problem)

    def flag(self, data: dict, key: str) -> bool:
        value = data.get(key, False)
        if not isinstance(value, bool):
            raise self.fail((key,), f"{show_value(value)} is not allowed; expected true or false")
        return value


class EntryChecker(KeyChecker):
    """The `models:` list, entry by entry."""

    def models(self, value) -> tuple[ModelEntry, ...]:
        known = sources()
        keys = [f"{key}:" for key in known]

        if not isinstance(value, list) or not value:
            raise self.fail(("models",), "expected a non-empty list of models (demo names, "
                            "{hf: ID, task: ...} or {path: FOLDER, task: ...})")
        entries = []
        for i, raw in enumerate(value):
            path = ("models", i)
            if isinstance(raw, str):
                raw = {bare_string_source(raw): raw}
            named = [key for key in known if isinstance(raw, dict) and key in raw]
            own = known[named[0]].option_keys if len(named) == 1 else ()
            fields = self.mapping(raw, path, (*known, *ENTRY_KEYS, *own))
            if len(named) != 1:
                raise self.fail(path, "each model needs exactly one of "
                                f"{', '.join(keys[:-1])} or {keys[-1]}")
            source = named[0]
            options = {key: fields[key] for key in own if key in fields}
            refused = known[source].check_options(options)
            if refused:
                raise self.fail(path + (refused[0],), refused[1])
            ref = fields[source]
            if not isinstance(ref, str) or not ref.strip():
                raise self.fail(path + (source,), f"{ref!r} is not allowed; expected a string")
            problem = known[source].check_ref(ref)
            if problem:
                raise self.fail(path, problem)
            task = fields.get("task")
            if task is not None and task not in TASKS:
                raise self.fail(path + ("task",),
                                f"{task!r} is not allowed; expected one of {', '.join(TASKS)}")
            dataset = fields.get("dataset")
            if isinstance(dataset, str):
                dataset = {"path": dataset}
            if dataset is not None and (not isinstance(dataset, dict) or "path" not in dataset):
                raise self.fail(path + ("dataset",), "expected a file or folder path, or a "
                                "mapping with path: (and max_samples:)")
            trust = fields.get("trust_remote_code", False)
            if not isinstance(trust, bool):
                raise self.fail(path + ("trust_remote_code",), f"{trust!r}: expected true/false")
            workload, generation = self.workload(fields, path, task, source, ref)
            training = self.training(fields, path, workload)
            entries.append(ModelEntry(ref=ref, source=source, task=task, dataset=dataset,
                                      trust_remote_code=trust, base_dir=self.base_dir,
                                      workload=workload, generation=generation,
                                      training=training, options=options or None))
        return tuple(entries)

    def workload(self, fields: dict, path: tuple, task: str | None, source: str,
                 ref: str) -> tuple[Workload, GenerationSettings | None]:
        written = fields.get("workload", Workload.INFER.value)
        if written not in WORKLOAD_NAMES:
            raise self.fail(path + ("workload",), f"{show_value(written)} is not allowed; "
                            f"expected one of {', '.join(WORKLOAD_NAMES)}")
        workload = Workload(written)
        generation = fields.get("generation")
        if generation is not None and workload != Workload.GENERATE:
            raise self.fail(path + ("generation",), "decoding settings apply to generate runs; "
                            "add `workload: generate` or remove `generation:`")
        settings = (None if generation is None
                    else self.settings(generation_settings, generation, path + ("generation",)))
        if settings is not None and settings.pass_at_1 and not fields.get("dataset"):
            raise self.fail(path + ("generation", "pass_at_1"), "pass@1 runs the completions "
                            "against the dataset's tests; add `dataset:` with a HumanEval-style "
                            "JSONL (prompt, entry_point, test), e.g. data/code-tasks.jsonl")
        known_task = task or sources()[source].known_task(ref)
        if workload == Workload.GENERATE and known_task not in (None, *GENERATE_TASKS):
            raise self.fail(path + ("workload",), f"generate runs need a causal-lm model; "
                            f"{ref} is {known_task}: remove `workload: generate`")
        return workload, settings

    def training(self, fields: dict, path: tuple, workload: Workload) -> TrainingSettings | None:
        training = fields.get("training")
        settings = (None if training is None
                    else self.settings(training_settings, training, path + ("training",)))
        if workload == Workload.TRAIN and not fields.get("dataset"):
            raise self.fail(path + ("workload",), "train runs learn from labelled data; add "
                            "`dataset:` (e.g. data/sentiment-mini.csv, data/text-mini.txt)")
        return settings

    def settings(self, parse: Callable[[Any], Settings], raw: Any, path: tuple) -> Settings:
        """A `generation:` or `training:` mapping parsed; a refusal names the key inside it."""
        try:
            return parse(raw)
        except SettingError as exc:
            raise self.fail(path + ((exc.key,) if exc.key else ()), exc.problem) from None

    def dataset_numbers(self, models: tuple[ModelEntry, ...]) -> None:
        """dataset.max_samples in range at load time (core.datasets checks the rest at run time)."""
        for i, entry in enumerate(models):
            if isinstance(entry.dataset, dict) and "max_samples" in entry.dataset:
                self.number(entry.dataset["max_samples"], ("models", i, "dataset", "max_samples"),
                            "models[].dataset.max_samples")
