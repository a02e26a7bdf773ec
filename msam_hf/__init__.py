"""msam-hf: MSAM (and MCSAN) drone video-text retrieval as Hugging Face models."""

from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoProcessor
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_mcsan import McsanConfig
from .configuration_msam import MsamConfig
from .lora import LORA_TARGET_MODULES, apply_lora, load_lora, merge_lora
from .modeling_mcsan import McsanModel, McsanOutput, McsanPreTrainedModel, McsanTextOutput, McsanVideoOutput
from .modeling_msam import MsamModel, MsamOutput, MsamPreTrainedModel, MsamTextOutput, MsamVideoOutput
from .pipeline_msam import MsamVideoTextRetrievalPipeline
from .processing_msam import MsamProcessor
from .processors import default_processor, default_tokenizer
from .search import SearchHit, VideoIndex
from .video_processing_msam import MsamVideoProcessor

__version__ = "0.1.0"

# In-package use through the Auto classes, and `auto_map` entries in saved folders so they load with
# `trust_remote_code=True` where msam_hf is not installed. Both models use MSAM's processor.
for config_class, model_class in ((MsamConfig, MsamModel), (McsanConfig, McsanModel)):
    AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    AutoModel.register(config_class, model_class, exist_ok=True)
    AutoImageProcessor.register(config_class, slow_image_processor_class=MsamVideoProcessor, exist_ok=True)
    AutoProcessor.register(config_class, MsamProcessor, exist_ok=True)
    config_class.register_for_auto_class()
    model_class.register_for_auto_class("AutoModel")
MsamVideoProcessor.register_for_auto_class("AutoImageProcessor")
MsamProcessor.register_for_auto_class("AutoProcessor")
# `pipeline("video-text-retrieval", model=...)` in-package; a pipeline instance's save_pretrained records it in the
# folder's `custom_pipelines`, so `pipeline(model=folder, trust_remote_code=True)` finds it without msam_hf.
PIPELINE_REGISTRY.register_pipeline(
    "video-text-retrieval", pipeline_class=MsamVideoTextRetrievalPipeline, pt_model=AutoModel, type="multimodal"
)

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
