"""`import msam_hf` is lazy (no torch, no transformers) yet keeps what the eager import gave: every public name, and
saved MSAM / MCSAN folders that load in-package through the Auto classes and `pipeline("video-text-retrieval")`
without `trust_remote_code`, whichever of msam_hf and transformers is imported first. Each check runs in a fresh
process, as a user's script would."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import msam_hf
from msam_hf import McsanConfig
from msam_hf import McsanModel
from msam_hf import MsamConfig
from msam_hf import MsamModel
from msam_hf import default_processor


def run_fresh(code: str, *args: str) -> dict:
    """Run `code` in a new interpreter, offline; return the JSON it prints last."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_msam_hf_imports_neither_torch_nor_transformers():
    outputs = run_fresh(
        """
        import json, sys
        import msam_hf
        print(json.dumps({"version": msam_hf.__version__, "loaded": sorted(
            name for name in ("torch", "transformers", "peft", "datasets", "faiss") if name in sys.modules)}))
        """
    )
    assert outputs == {"version": msam_hf.__version__, "loaded": []}


def test_every_public_name_is_importable():
    name_to_module = {name: module for module, names in msam_hf._IMPORT_STRUCTURE.items() for name in names}
    assert set(msam_hf.__all__) == set(name_to_module)
    for name in msam_hf.__all__:
        value = getattr(msam_hf, name)
        assert getattr(value, "__module__", f"msam_hf.{name_to_module[name]}").startswith("msam_hf."), name
    assert set(msam_hf.__all__) <= set(dir(msam_hf))
    with pytest.raises(AttributeError):
        msam_hf.NoSuchName  # noqa: B018
    with pytest.raises(ImportError):
        from msam_hf import NoSuchName  # noqa: F401


def test_classes_write_auto_map_however_imported():
    """`save_pretrained` writes `auto_map` (for `trust_remote_code` loading) only for classes registered for an Auto
    class; that now happens when their module is imported, also directly (`from msam_hf.modeling_msam import ...`)."""
    assert MsamConfig._auto_class == "AutoConfig" and McsanConfig._auto_class == "AutoConfig"
    assert MsamModel._auto_class == "AutoModel" and McsanModel._auto_class == "AutoModel"
    assert msam_hf.MsamVideoProcessor._auto_class == "AutoImageProcessor"
    assert msam_hf.MsamProcessor._auto_class == "AutoProcessor"
    outputs = run_fresh(
        """
        import json
        from msam_hf.modeling_msam import MsamModel
        from msam_hf.configuration_msam import MsamConfig
        print(json.dumps([MsamModel._auto_class, MsamConfig._auto_class]))
        """
    )
    assert outputs == ["AutoModel", "AutoConfig"]


@pytest.fixture(scope="module")
def saved_folders(tmp_path_factory):
    """A tiny MSAM and a tiny MCSAN folder, each with its processor, as `save_pretrained` writes them."""
    root = tmp_path_factory.mktemp("import")
    torch.manual_seed(0)
    folders = {}
    for name, model in (("msam", MsamModel(MsamConfig.tiny())), ("mcsan", McsanModel(McsanConfig.tiny()))):
        model.save_pretrained(root / name)
        default_processor(model.config).save_pretrained(root / name)
        folders[name] = str(root / name)
    return folders


USER_SCRIPT = """
    import json, sys
    from safetensors.torch import load_file
    if sys.argv[2] == "msam_hf first":
        import msam_hf
        from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoProcessor, pipeline
    else:
        from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoProcessor, pipeline
        import msam_hf

    outputs = {}
    for name, folder in json.loads(sys.argv[1]).items():
        model = AutoModel.from_pretrained(folder)  # no trust_remote_code: msam_hf's own classes
        saved = load_file(f"{folder}/model.safetensors")
        state = model.state_dict()
        outputs[name] = {
            "config": type(AutoConfig.from_pretrained(folder)).__module__,
            "model": type(model).__module__ + "." + type(model).__name__,
            "weights_equal": all(bool((state[key] == value).all()) for key, value in saved.items()),
            "from_config": type(AutoModel.from_config(model.config)).__name__,
            "processor": type(AutoProcessor.from_pretrained(folder)).__module__,
            "image_processor": type(AutoImageProcessor.from_pretrained(folder)).__module__,
            # A folder path would need trust_remote_code (the folder names its own pipeline code): pass the model.
            "pipeline": type(
                pipeline("video-text-retrieval", model=model, processor=AutoProcessor.from_pretrained(folder))
            ).__module__,
        }
    print(json.dumps(outputs))
    """


@pytest.mark.parametrize("order", ["msam_hf first", "transformers first"])
def test_auto_classes_and_pipeline_load_saved_folders_in_package(saved_folders, order):
    outputs = run_fresh(USER_SCRIPT, json.dumps(saved_folders), order)
    for name, model_class in (("msam", "MsamModel"), ("mcsan", "McsanModel")):
        assert outputs[name] == {
            "config": f"msam_hf.configuration_{name}",
            "model": f"msam_hf.modeling_{name}.{model_class}",
            "weights_equal": True,
            "from_config": model_class,
            "processor": "msam_hf.processing_msam",
            "image_processor": "msam_hf.video_processing_msam",
            "pipeline": "msam_hf.pipeline_msam",
        }, name


def test_registrations_in_this_process():
    """What the Auto classes and the pipeline registry hold, and `register_auto_classes()` (everything at once) can
    run again without changing it."""
    from transformers import AutoConfig
    from transformers.models.auto.image_processing_auto import IMAGE_PROCESSOR_MAPPING
    from transformers.models.auto.modeling_auto import MODEL_MAPPING
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING
    from transformers.pipelines import PIPELINE_REGISTRY

    from msam_hf._registration import register_auto_classes

    for _ in range(2):
        assert AutoConfig.for_model("mcsan").__class__ is McsanConfig
        for config_class, model_class in ((MsamConfig, MsamModel), (McsanConfig, McsanModel)):
            assert MODEL_MAPPING[config_class] is model_class
            assert IMAGE_PROCESSOR_MAPPING[config_class] == {"pil": msam_hf.MsamVideoProcessor}
            assert PROCESSOR_MAPPING[config_class] is msam_hf.MsamProcessor
        _, task, _ = PIPELINE_REGISTRY.check_task("video-text-retrieval")
        assert task["impl"] is msam_hf.MsamVideoTextRetrievalPipeline
        register_auto_classes()


@pytest.mark.parametrize(
    "command", [["--help"], *([name, "--help"] for name in ("index", "search", "evaluate", "convert"))]
)
def test_command_help_imports_no_torch(command):
    outputs = run_fresh(
        f"""
        import contextlib, io, json, sys
        from msam_hf.cli import main
        with contextlib.redirect_stdout(io.StringIO()) as help_text, contextlib.suppress(SystemExit):
            main({command!r})
        print(json.dumps({{"usage": help_text.getvalue()[:6], "torch": "torch" in sys.modules}}))
        """
    )
    assert outputs == {"usage": "usage:", "torch": False}


def test_the_search_package_exports_its_structure_lazily():
    import msam_hf.search as search

    assert set(search.__all__) == {name for names in search._IMPORT_STRUCTURE.values() for name in names}
    for name in search.__all__:
        getattr(search, name)
