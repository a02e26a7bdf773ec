"""`evaluate` wrapper of msam_hf.metrics.retrieval_metrics (CLIP4Clip / MSVD multi-sentence protocol).

Load it offline from its folder: ``evaluate.load("path/to/video_text_retrieval")``.
"""

import datasets
import evaluate
import numpy as np

from msam_hf.metrics import TIE_POLICIES
from msam_hf.metrics import retrieval_metrics

_DESCRIPTION = (
    "Text-to-video and video-to-text retrieval metrics (R@1/5/10 in percent, median and mean rank, rsum) "
    "of a caption x video similarity matrix, with several captions per video (CLIP4Clip / MSVD protocol). "
    "Video-to-text scores a video's caption group by the maximum over its captions. Equal scores are "
    f"ranked by an explicit tie policy, one of {TIE_POLICIES} (default pessimistic: the true item ranks "
    "after every item it ties with)."
)

_KWARGS_DESCRIPTION = """
Args:
    similarity: one row per caption, one score per video (all rows the same length).
    caption_to_video: for each caption, the index (column) of its video. Every video needs a caption.
    ties: "pessimistic" (default), "optimistic" or "mean" (expected value under random tie-breaking).
Returns:
    t2v_r1, t2v_r5, t2v_r10, t2v_median_rank, t2v_mean_rank, t2v_rsum, the same with v2t_, and rsum.
Examples:
    >>> metric = evaluate.load("msam_hf/evaluate_metrics/video_text_retrieval")
    >>> metric.compute(similarity=[[0.9, 0.1], [0.2, 0.8]], caption_to_video=[0, 1])["t2v_r1"]
    100.0
"""

_CITATION = """
@article{luo2022clip4clip,
  title={CLIP4Clip: An empirical study of CLIP for end to end video clip retrieval and captioning},
  author={Luo, Huaishao and Ji, Lei and Zhong, Ming and Chen, Yang and Lei, Wen and Duan, Nan and Li, Tianrui},
  journal={Neurocomputing},
  volume={508},
  pages={293--304},
  year={2022}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class VideoTextRetrieval(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            module_type="metric",
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # float64 so that scores which differ only beyond float32 precision do not become ties.
            features=datasets.Features(
                {
                    "similarity": datasets.List(datasets.Value("float64")),
                    "caption_to_video": datasets.Value("int64"),
                }
            ),
            reference_urls=["https://github.com/ArrowLuo/CLIP4Clip"],
        )

    def _compute(self, similarity, caption_to_video, ties: str = "pessimistic") -> dict[str, float]:
        # Rows arrive as Python lists; ragged rows make np.asarray fail with a clear shape error.
        return retrieval_metrics(similarity, np.asarray(caption_to_video, dtype=np.int64), ties=ties)
