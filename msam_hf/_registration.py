"""msam_hf's classes in transformers' Auto classes and pipeline registry, without importing torch at `import msam_hf`.

After `import msam_hf`, a saved MSAM or MCSAN folder loads in-package (no `trust_remote_code`) through `AutoConfig`,
`AutoModel`, `AutoImageProcessor`, `AutoProcessor` and `pipeline("video-text-retrieval", ...)`, as when
`msam_hf/__init__.py` imported everything and registered it eagerly. Importing transformers' auto modules imports
torch, so nothing is registered at `import msam_hf`; instead `install()` puts a finder on `sys.meta_path` that runs a
callback right after one of these modules has been imported (or at once, for those imported already):

- `transformers.models.auto.{configuration,modeling,image_processing,processing}_auto`: their mapping's
  `_extra_content` (where `Auto*.register` writes) becomes a `PendingRegistrations` dict, which registers an msam_hf
  entry the first time it is looked up (`"msam" in CONFIG_MAPPING`, `CONFIG_MAPPING["msam"]`,
  `MsamConfig in MODEL_MAPPING`, ...) or the mapping is listed. A lookup imports only what it resolves: resolving
  `"msam"` imports `configuration_msam`, not the model.
- `transformers.pipelines` and `msam_hf.pipeline_msam`: once both are imported, the `video-text-retrieval` task is
  registered (the registry is read by task name before any model is loaded).
- msam_hf's config, model and processor modules: `register_for_auto_class` on their classes, so that
  `save_pretrained` writes the `auto_map` entries that `trust_remote_code=True` loading needs (the classes are then
  the same whichever way they were imported).

`register_auto_classes()` registers everything at once (imports torch and the models).
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import threading
import warnings
from collections.abc import Callable

# model_type -> (config module, config class, model module, model class); both models use MSAM's processors.
MODELS = {
    "msam": ("configuration_msam", "MsamConfig", "modeling_msam", "MsamModel"),
    "mcsan": ("configuration_mcsan", "McsanConfig", "modeling_mcsan", "McsanModel"),
}
IMAGE_PROCESSOR = ("video_processing_msam", "MsamVideoProcessor")
PROCESSOR = ("processing_msam", "MsamProcessor")
PIPELINE = ("pipeline_msam", "MsamVideoTextRetrievalPipeline")
# msam_hf module -> (class, Auto class its `auto_map` entry names); configs take register_for_auto_class's default.
AUTO_CLASSES = {
    "configuration_msam": [("MsamConfig", "AutoConfig")],
    "configuration_mcsan": [("McsanConfig", "AutoConfig")],
    "modeling_msam": [("MsamModel", "AutoModel")],
    "modeling_mcsan": [("McsanModel", "AutoModel")],
    "video_processing_msam": [("MsamVideoProcessor", "AutoImageProcessor")],
    "processing_msam": [("MsamProcessor", "AutoProcessor")],
}

_PACKAGE = __name__.rpartition(".")[0]
_AUTO = "transformers.models.auto."
_lock = threading.RLock()


def _load(module: str, name: str):
    return getattr(importlib.import_module(f"{_PACKAGE}.{module}"), name)


# (module, qualified name) of each config class -> its model_type.
_CONFIG_CLASSES = {(f"{_PACKAGE}.{module}", name): model_type for model_type, (module, name, _, _) in MODELS.items()}


def _model_type_of(config_class: object) -> str | None:
    """The model_type of an msam_hf config class (not of a remote-code copy of it), else None."""
    if not isinstance(config_class, type):
        return None
    return _CONFIG_CLASSES.get((config_class.__module__, config_class.__qualname__))


# -- registering one entry ------------------------------------------------------------------------------------------


def register_config(model_type: str) -> None:
    from transformers import AutoConfig

    config_module, config_name, _, _ = MODELS[model_type]
    AutoConfig.register(model_type, _load(config_module, config_name), exist_ok=True)


def register_model(model_type: str) -> None:
    from transformers import AutoModel

    config_module, config_name, model_module, model_name = MODELS[model_type]
    AutoModel.register(_load(config_module, config_name), _load(model_module, model_name), exist_ok=True)


def register_image_processor(model_type: str) -> None:
    from transformers import AutoImageProcessor

    config_module, config_name, _, _ = MODELS[model_type]
    AutoImageProcessor.register(
        _load(config_module, config_name), slow_image_processor_class=_load(*IMAGE_PROCESSOR), exist_ok=True
    )


def register_processor(model_type: str) -> None:
    from transformers import AutoProcessor

    config_module, config_name, _, _ = MODELS[model_type]
    AutoProcessor.register(_load(config_module, config_name), _load(*PROCESSOR), exist_ok=True)


def register_pipeline() -> None:
    """`pipeline("video-text-retrieval", model=...)` in-package. Outside it, a saved model folder names the task in
    its `custom_pipelines` (the models' `save_pretrained` writes it), so `pipeline(model=folder,
    trust_remote_code=True)` finds it without msam_hf."""
    from transformers import AutoModel
    from transformers.pipelines import PIPELINE_REGISTRY

    pipeline_class, task = _load(*PIPELINE), _load(PIPELINE[0], "TASK")
    if PIPELINE_REGISTRY.supported_tasks.get(task, {}).get("impl") is pipeline_class:
        return
    PIPELINE_REGISTRY.register_pipeline(task, pipeline_class=pipeline_class, pt_model=AutoModel, type="multimodal")


def register_for_auto_classes(module) -> None:
    """`register_for_auto_class` on the classes `module` (an msam_hf module, see AUTO_CLASSES) defines."""
    for class_name, auto_class in AUTO_CLASSES[module.__name__.rpartition(".")[2]]:
        getattr(module, class_name).register_for_auto_class(auto_class)


def register_auto_classes() -> None:
    """Register every msam_hf class with the Auto classes and the pipeline now (what `import msam_hf` used to do)."""
    for model_type in MODELS:
        register_config(model_type)
        register_model(model_type)
        register_image_processor(model_type)
        register_processor(model_type)
    for module in AUTO_CLASSES:
        register_for_auto_classes(importlib.import_module(f"{_PACKAGE}.{module}"))
    register_pipeline()


# -- lazy entries in transformers' auto mappings -------------------------------------------------------------------


class PendingRegistrations(dict):
    """A transformers auto mapping's `_extra_content` holding, besides what is registered, msam_hf entries that are
    registered (through the mapping's own `register`, which writes here) when first looked up.

    `pending` maps a key matcher to the function that registers that entry; each runs at most once. Listing the
    mapping (keys, values, items, iteration, len) registers every pending entry first, as transformers looks classes
    up by name that way (`processor_class_from_name`, `config_class_to_model_type`).
    """

    def __init__(self, content: dict, pending: list[tuple[Callable[[object], bool], Callable[[], None]]]):
        super().__init__(content)
        self._pending = list(pending)

    def _register(self, key: object) -> None:
        if not self._pending:
            return
        with _lock:
            for entry in list(self._pending):
                matches, register = entry
                if matches(key) and entry in self._pending:
                    self._pending.remove(entry)  # first: `register` looks the key up again
                    register()

    def _register_all(self) -> None:
        while self._pending:
            with _lock:
                if self._pending:
                    _, register = self._pending.pop(0)
                    register()

    def __contains__(self, key: object) -> bool:
        if not dict.__contains__(self, key):
            self._register(key)
        return dict.__contains__(self, key)

    def __getitem__(self, key):
        if not dict.__contains__(self, key):
            self._register(key)
        return dict.__getitem__(self, key)

    def get(self, key, default=None):
        return self[key] if key in self else default

    def keys(self):
        self._register_all()
        return dict.keys(self)

    def values(self):
        self._register_all()
        return dict.values(self)

    def items(self):
        self._register_all()
        return dict.items(self)

    def __iter__(self):
        self._register_all()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._register_all()
        return dict.__len__(self)

    def __reduce__(self):
        return dict, (dict(self.items()),)


def _is_model_type(model_type: str) -> Callable[[object], bool]:
    return lambda key: key == model_type


def _is_config_class_of(model_type: str) -> Callable[[object], bool]:
    return lambda key: _model_type_of(key) == model_type


def _defer(mapping, pending) -> None:
    """Make `mapping` (a transformers `_LazyConfigMapping` / `_LazyAutoMapping`) register `pending` when looked up."""
    content = mapping._extra_content
    if isinstance(content, PendingRegistrations):
        content._pending.extend(entry for entry in pending if entry not in content._pending)
    else:
        mapping._extra_content = PendingRegistrations(content, pending)


def _on_configuration_auto(module) -> None:
    _defer(module.CONFIG_MAPPING, [(_is_model_type(t), lambda t=t: register_config(t)) for t in MODELS])


def _on_modeling_auto(module) -> None:
    _defer(module.MODEL_MAPPING, [(_is_config_class_of(t), lambda t=t: register_model(t)) for t in MODELS])


def _on_image_processing_auto(module) -> None:
    _defer(
        module.IMAGE_PROCESSOR_MAPPING,
        [(_is_config_class_of(t), lambda t=t: register_image_processor(t)) for t in MODELS],
    )


def _on_processing_auto(module) -> None:
    _defer(module.PROCESSOR_MAPPING, [(_is_config_class_of(t), lambda t=t: register_processor(t)) for t in MODELS])


def _on_pipeline_modules(_module) -> None:
    """Register the task once transformers.pipelines and pipeline_msam are both imported (whichever is last)."""
    pipeline_module = f"{_PACKAGE}.{PIPELINE[0]}"
    if all(name in sys.modules and not _initializing(name) for name in ("transformers.pipelines", pipeline_module)):
        register_pipeline()
    elif "transformers.pipelines" in sys.modules and pipeline_module not in sys.modules:
        importlib.import_module(pipeline_module)  # its own callback registers the task


# -- running a callback after a module is imported -----------------------------------------------------------------

_callbacks: dict[str, list[Callable]] = {}
_running: set[str] = set()  # modules whose callbacks run now (they count as imported)


def _initializing(name: str) -> bool:
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    return name not in _running and bool(getattr(spec, "_initializing", False))


def _run_callbacks(module) -> None:
    _running.add(module.__name__)
    try:
        for callback in _callbacks.pop(module.__name__, []):
            try:
                callback(module)
            except Exception as error:  # never break the import itself (e.g. transformers' internals changed)
                warnings.warn(
                    f"msam_hf could not register its classes on importing {module.__name__} ({error!r}); "
                    "call msam_hf._registration.register_auto_classes() to register them all",
                    stacklevel=2,
                )
    finally:
        _running.discard(module.__name__)
    if not _callbacks and _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


class _NotifyingLoader(importlib.abc.Loader):
    """Wraps a module's loader: executes the module, then runs its callbacks. The module keeps the real loader."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        _run_callbacks(module)

    def __getattr__(self, name):
        return getattr(self.loader, name)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for a module with callbacks, wraps the loader that the other finders find."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _callbacks:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _NotifyingLoader(spec.loader)
                return spec
        return None


_FINDER = _PostImportFinder()


def when_imported(name: str, callback: Callable) -> None:
    """Run `callback(module)` once module `name` is imported: now if it is, else right after its import."""
    module = sys.modules.get(name)
    if module is not None and not _initializing(name):
        callback(module)
        return
    _callbacks.setdefault(name, []).append(callback)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


_installed = False


def install() -> None:
    """Set up the lazy registrations (idempotent; imports nothing)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        for module, callback in (
            ("configuration_auto", _on_configuration_auto),
            ("modeling_auto", _on_modeling_auto),
            ("image_processing_auto", _on_image_processing_auto),
            ("processing_auto", _on_processing_auto),
        ):
            when_imported(_AUTO + module, callback)
        for module in AUTO_CLASSES:
            when_imported(f"{_PACKAGE}.{module}", register_for_auto_classes)
        when_imported("transformers.pipelines", _on_pipeline_modules)
        when_imported(f"{_PACKAGE}.{PIPELINE[0]}", _on_pipeline_modules)
