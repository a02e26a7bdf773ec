"""msam-hf: MSAM (and MCSAN) drone video-text retrieval as Hugging Face models.

`import msam_hf` imports neither torch nor transformers: each public name below is imported from its submodule when
first used (`from msam_hf import MsamModel`), as transformers' own `_LazyModule` does. The Auto classes and the
`video-text-retrieval` pipeline still know msam_hf's classes after `import msam_hf` (no `trust_remote_code` needed
in-package): `_registration` registers them when transformers' auto modules and pipelines are imported and looked up.
"""

from typing import TYPE_CHECKING

from . import _registration
from ._lazy import lazy_exports

__version__ = "0.1.0"

# submodule -> the public names it defines
_IMPORT_STRUCTURE = {
    "configuration_mcsan": ["McsanConfig"],
    "configuration_msam": ["MsamConfig"],
    "lora": ["LORA_TARGET_MODULES", "apply_lora", "load_lora", "merge_lora"],
    "modeling_mcsan": ["McsanModel", "McsanOutput", "McsanPreTrainedModel", "McsanTextOutput", "McsanVideoOutput"],
    "modeling_msam": ["MsamModel", "MsamOutput", "MsamPreTrainedModel", "MsamTextOutput", "MsamVideoOutput"],
    "pipeline_msam": ["MsamVideoTextRetrievalPipeline"],
    "processing_msam": ["MsamProcessor"],
    "processors": ["default_processor", "default_tokenizer"],
    "search": ["SearchHit", "VideoIndex"],
    "video_processing_msam": ["MsamVideoProcessor"],
}

# every name of _IMPORT_STRUCTURE (tests/test_import.py checks)
__all__ = [
    "LORA_TARGET_MODULES",
    "McsanConfig",
    "McsanModel",
    "McsanOutput",
    "McsanPreTrainedModel",
    "McsanTextOutput",
    "McsanVideoOutput",
    "MsamConfig",
    "MsamModel",
    "MsamOutput",
    "MsamPreTrainedModel",
    "MsamProcessor",
    "MsamTextOutput",
    "MsamVideoOutput",
    "MsamVideoProcessor",
    "MsamVideoTextRetrievalPipeline",
    "SearchHit",
    "VideoIndex",
    "apply_lora",
    "default_processor",
    "default_tokenizer",
    "load_lora",
    "merge_lora",
]

_registration.install()
__getattr__, __dir__ = lazy_exports(__name__, _IMPORT_STRUCTURE)

if TYPE_CHECKING:  # what static analysers and IDEs see
    from .configuration_mcsan import McsanConfig
    from .configuration_msam import MsamConfig
    from .lora import LORA_TARGET_MODULES
    from .lora import apply_lora
    from .lora import load_lora
    from .lora import merge_lora
    from .modeling_mcsan import McsanModel
    from .modeling_mcsan import McsanOutput
    from .modeling_mcsan import McsanPreTrainedModel
    from .modeling_mcsan import McsanTextOutput
    from .modeling_mcsan import McsanVideoOutput
    from .modeling_msam import MsamModel
    from .modeling_msam import MsamOutput
    from .modeling_msam import MsamPreTrainedModel
    from .modeling_msam import MsamTextOutput
    from .modeling_msam import MsamVideoOutput
    from .pipeline_msam import MsamVideoTextRetrievalPipeline
    from .processing_msam import MsamProcessor
    from .processors import default_processor
    from .processors import default_tokenizer
    from .search import SearchHit
    from .search import VideoIndex
    from .video_processing_msam import MsamVideoProcessor
