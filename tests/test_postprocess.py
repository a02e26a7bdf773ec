"""Test-time post-processing (DSL, QB-Norm, Sinkhorn) on hand-made matrices, and `msam evaluate --postprocess`."""

import json
import math
from pathlib import Path

import pytest
import torch

from msam_hf import MsamConfig
from msam_hf import MsamModel
from msam_hf import default_processor
from msam_hf.cli import main as msam
from msam_hf.data.synthetic import SynthConfig
from msam_hf.data.synthetic import generate_synthetic_dataset
from msam_hf.metrics import retrieval_metrics
from msam_hf.postprocess import Postprocessor
from msam_hf.postprocess import dual_softmax
from msam_hf.postprocess import parse_postprocess
from msam_hf.postprocess import query_bank_activation_set
from msam_hf.postprocess import querybank_normalise
from msam_hf.postprocess import sinkhorn

# Captions (rows) 0, 1, 2 describe videos (columns) 0, 1, 2. Video 1 is a hub: it scores 5 for every caption, so
# it wins every row and plain text-to-video R@1 is 1 / 3.
HUB = torch.tensor([[4.0, 5.0, 0.0], [0.0, 5.0, 0.0], [0.0, 5.0, 4.0]])
ONE_CAPTION_EACH = [0, 1, 2]


def test_dsl_weights_each_score_by_its_video_prior_over_the_captions():
    # Column 0 is [4, 0, 0]: its softmax gives caption 0 the prior e^4 / (e^4 + 2); the hub's column is flat (1/3
    # each); every score is multiplied by its prior and by the number of captions (3).
    prior = math.exp(4) / (math.exp(4) + 2)
    expected = torch.tensor(
        [[4 * prior * 3, 5 / 3 * 3, 0.0], [0.0, 5 / 3 * 3, 0.0], [0.0, 5 / 3 * 3, 4 * prior * 3]], dtype=torch.float64
    )
    torch.testing.assert_close(dual_softmax(HUB), expected)
    assert retrieval_metrics(HUB, ONE_CAPTION_EACH)["t2v_r1"] == pytest.approx(100 / 3)
    assert retrieval_metrics(dual_softmax(HUB), ONE_CAPTION_EACH)["t2v_r1"] == 100.0


def test_dsl_with_a_huge_temperature_is_the_plain_matrix():
    # τ → ∞: every prior flattens to 1 / 3, so S' = S · 1/3 · 3 = S and the hub wins again.
    torch.testing.assert_close(dual_softmax(HUB, temperature=1e9), HUB.double())


def test_sinkhorn_rows_and_columns_sum_to_the_marginals():
    # Each iteration scales the columns, then the rows: after one, the rows are exact and the columns not yet.
    once = sinkhorn(HUB, iterations=1).exp()  # sinkhorn returns log P
    torch.testing.assert_close(once.sum(dim=1), torch.full((3,), 1 / 3, dtype=torch.float64))
    assert not torch.allclose(once.sum(dim=0), torch.full((3,), 1 / 3, dtype=torch.float64), atol=1e-3)
    plan = sinkhorn(HUB, iterations=50).exp()
    torch.testing.assert_close(plan.sum(dim=1), torch.full((3,), 1 / 3, dtype=torch.float64))
    torch.testing.assert_close(plan.sum(dim=0), torch.full((3,), 1 / 3, dtype=torch.float64), atol=1e-6, rtol=0)
    # The hub has to share its mass, so every caption's own video comes first.
    assert sinkhorn(HUB).argmax(dim=1).tolist() == [0, 1, 2]


def test_sinkhorn_of_a_symmetric_two_by_two_by_hand():
    # exp(S) = [[e^3, e^1], [e^1, e^3]] already has equal row and column sums (e^3 + e), so one scaling step lands
    # on the doubly stochastic matrix with marginals 1/2: P = exp(S) / (2 (e^3 + e)).
    scores = torch.tensor([[3.0, 1.0], [1.0, 3.0]])
    expected = scores.double() - math.log(2 * (math.exp(3) + math.exp(1)))
    torch.testing.assert_close(sinkhorn(scores, iterations=1), expected)


def test_sinkhorn_temperature_divides_the_scores_first():
    scores = torch.tensor([[3.0, 1.0], [1.0, 3.0]])
    torch.testing.assert_close(sinkhorn(scores, temperature=2.0), sinkhorn(scores / 2))


def test_sinkhorn_gives_a_video_column_mass_in_proportion_to_its_captions():
    # Video 0 has two captions, video 1 one; equal scores leave nothing but the marginals: P = r cᵀ with
    # r = 1/3 per caption and c = (2/3, 1/3).
    plan = sinkhorn(torch.zeros(3, 2), caption_to_video=[0, 0, 1], iterations=1).exp()
    torch.testing.assert_close(plan, torch.tensor([[2 / 9, 1 / 9]] * 3, dtype=torch.float64))


def test_sinkhorn_multi_sentence_marginals_keep_a_caption_that_uniform_marginals_move():
    # Video 0 has three captions, video 1 one. Uniform column marginals (1/2 each) make video 1 take half of all the
    # mass, which pulls caption 2 over to it; marginals proportional to the captions (3/4, 1/4) do not.
    scores = torch.tensor([[2.0, 0.0], [2.0, 0.0], [2.0, 1.5], [0.0, 2.0]])
    caption_to_video = [0, 0, 0, 1]
    assert sinkhorn(scores, caption_to_video).argmax(dim=1).tolist() == [0, 0, 0, 1]
    assert sinkhorn(scores).argmax(dim=1).tolist() == [0, 0, 1, 1]
    plan = sinkhorn(scores, caption_to_video, iterations=200).exp()
    torch.testing.assert_close(plan.sum(dim=0), torch.tensor([0.75, 0.25], dtype=torch.float64), atol=1e-6, rtol=0)


def test_multi_sentence_protocol_ranks_both_directions_from_the_transformed_matrix():
    # Videos with 2 captions each. Video 1 is a hub for text-to-video (every caption scores it 5); video-to-text
    # ranks caption groups by their best caption. DSL re-weights the caption × video matrix as a whole.
    scores = torch.tensor([[4.0, 5.0], [4.0, 5.0], [0.0, 5.0], [0.0, 6.0]])
    caption_to_video = [0, 0, 1, 1]
    plain = retrieval_metrics(scores, caption_to_video)
    assert plain["t2v_r1"] == 50.0  # captions 0 and 1 go to the hub
    transformed = dual_softmax(scores)
    # Column 0: softmax over the 4 captions of [4, 4, 0, 0]; column 1 over [5, 5, 5, 6].
    column_0 = torch.tensor([4.0, 4.0, 0.0, 0.0]).double().softmax(0)
    column_1 = torch.tensor([5.0, 5.0, 5.0, 6.0]).double().softmax(0)
    torch.testing.assert_close(transformed, torch.stack([scores[:, 0] * column_0, scores[:, 1] * column_1], 1) * 4)
    after = retrieval_metrics(transformed, caption_to_video)
    assert after["t2v_r1"] == 100.0
    # Video-to-text (each video ranks the caption groups by their best caption): video 0's group scores 4 · 4 · prior
    # against 0, video 1's own group holds caption 3, the column's highest.
    assert after["v2t_r1"] == 100.0


# QB-Norm: a bank of 2 captions that are not test queries; both pick video 1 first, so the activation set is {1}.
BANK = torch.tensor([[0.1, 0.9, 0.2], [0.3, 0.8, 0.1]])


def test_qbnorm_activation_set_is_the_bank_queries_top_videos():
    assert query_bank_activation_set(BANK).tolist() == [1]
    assert query_bank_activation_set(BANK, top_k=2).tolist() == [0, 1, 2]


def test_qbnorm_leaves_a_query_alone_when_its_top_video_is_not_a_hub():
    test = torch.tensor([[0.9, 0.8, 0.1]])  # top-1 is video 0, not in {1}
    torch.testing.assert_close(querybank_normalise(test, BANK), test.double())


def test_qbnorm_normalises_a_query_whose_top_video_is_a_hub():
    # Top-1 is the hub (video 1), so the row becomes log(exp(β s_j) / Z_j) with Z_j = Σ_bank exp(β b_j), β = 20.
    test = torch.tensor([[0.2, 0.9, 0.85]])
    log_z = [
        math.log(math.exp(2) + math.exp(6)),
        math.log(math.exp(18) + math.exp(16)),
        math.log(math.exp(4) + math.exp(2)),
    ]
    expected = torch.tensor([[20 * 0.2 - log_z[0], 20 * 0.9 - log_z[1], 20 * 0.85 - log_z[2]]], dtype=torch.float64)
    torch.testing.assert_close(querybank_normalise(test, BANK), expected)
    assert querybank_normalise(test, BANK).argmax().item() == 2  # the hub no longer wins this query


def test_qbnorm_handles_each_row_on_its_own():
    test = torch.tensor([[0.9, 0.8, 0.1], [0.2, 0.9, 0.85]])
    normalised = querybank_normalise(test, BANK)
    torch.testing.assert_close(normalised[0], test[0].double())
    torch.testing.assert_close(normalised[1], querybank_normalise(test[1:], BANK)[0])
    with pytest.raises(ValueError, match="3 videos"):
        querybank_normalise(torch.zeros(1, 2), BANK)


def test_postprocess_names_from_repeated_options_and_comma_lists():
    assert parse_postprocess(["dsl,sinkhorn", "DSL", "qbnorm"]) == ["dsl", "sinkhorn", "qbnorm"]
    assert parse_postprocess([]) == []
    with pytest.raises(ValueError, match="unknown method.*csls"):
        parse_postprocess(["dsl", "csls"])


def test_a_method_that_reranks_text_queries_only_reports_the_plain_video_to_text_numbers():
    from msam_hf.evaluation import RetrievalFeatures
    from msam_hf.evaluation import _PrecomputedScores
    from msam_hf.evaluation import evaluate_postprocessed
    from msam_hf.evaluation import evaluate_retrieval

    features = RetrievalFeatures(
        text=None,
        video=None,
        caption_to_video=torch.tensor(ONE_CAPTION_EACH),
        video_ids=["a", "b", "c"],
        captions=["x", "y", "z"],
        timestamps=[[0.0]] * 3,
    )
    plain_scores = _PrecomputedScores(MsamConfig.tiny(), {1: HUB})
    plain = evaluate_retrieval(plain_scores, features, text_context_sizes=(1,))["metrics"]["|J|=1"]
    reverse = Postprocessor(
        name="reverse", label="reverse", apply=lambda scores, *_: -scores, parameters={}, caveat="", directions=("t2v",)
    )
    results = evaluate_postprocessed(plain_scores, features, reverse, {"metrics": {"|J|=1": plain}}, logit_scale=1.0)
    metrics = results["metrics"]["|J|=1"]
    assert metrics["t2v_r1"] == retrieval_metrics(-HUB, ONE_CAPTION_EACH)["t2v_r1"] != plain["t2v_r1"]
    assert metrics["v2t_r1"] == plain["v2t_r1"] != retrieval_metrics(-HUB, ONE_CAPTION_EACH)["v2t_r1"]
    assert metrics["rsum"] == metrics["t2v_rsum"] + plain["v2t_rsum"]
    assert results["postprocess"]["directions"] == ["t2v"]


# ----------------------------------------------------------------------------- msam evaluate --postprocess


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    # 14 train videos (QB-Norm's bank: 70 captions), 2 validation, 4 test (20 captions)
    config = SynthConfig(num_videos=20, width=48, height=48, duration=2.0, seed=1, videos_per_site=2)
    return generate_synthetic_dataset(tmp_path_factory.mktemp("synth"), config, num_workers=1, progress=False)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = MsamModel(MsamConfig.tiny(max_frames=2)).eval()
    folder = tmp_path_factory.mktemp("models") / "tiny-msam"
    model.save_pretrained(folder)
    default_processor(model.config).save_pretrained(folder)
    return folder


def _evaluate(model_dir, dataset_dir, output, *options):
    return msam(
        [
            "evaluate",
            str(model_dir),
            str(dataset_dir),
            "--split",
            "test",
            "--text-context-size",
            "4",
            "--num-workers",
            "0",
            "--attention-queries",
            "1",
            "--output-dir",
            str(output),
            *options,
        ]
    )


def test_msam_evaluate_adds_labelled_postprocessed_rows_next_to_unchanged_plain_rows(
    model_dir, dataset_dir, tmp_path, capsys
):
    assert _evaluate(model_dir, dataset_dir, tmp_path / "plain") == 0
    assert _evaluate(model_dir, dataset_dir, tmp_path / "post", "--postprocess", "dsl", "qbnorm,sinkhorn") == 0
    printed = capsys.readouterr().out
    plain = json.loads((tmp_path / "plain" / "results.json").read_text())
    post = json.loads((tmp_path / "post" / "results.json").read_text())

    labels = ["tiny-msam (+DSL)", "tiny-msam (+QB-Norm)", "tiny-msam (+Sinkhorn)"]
    assert list(post) == ["tiny-msam", *labels]
    # The plain row is the model's own numbers, as without --postprocess.
    assert post["tiny-msam"]["metrics"] == plain["tiny-msam"]["metrics"]
    assert "postprocess" not in post["tiny-msam"]
    for label, method in zip(labels, ["dsl", "qbnorm", "sinkhorn"]):
        assert post[label]["postprocess"]["method"] == method
        assert list(post[label]["metrics"]) == ["|J|=4", "|J|=1"]
        for size in ("4", "1"):
            assert f"| {label} | ciffp | {size} |" in printed
    # QB-Norm re-ranks text queries only: its video-to-text numbers are the plain ones.
    for key, metrics in post["tiny-msam (+QB-Norm)"]["metrics"].items():
        plain_metrics = plain["tiny-msam"]["metrics"][key]
        assert {name: value for name, value in metrics.items() if name.startswith("v2t_")} == {
            name: value for name, value in plain_metrics.items() if name.startswith("v2t_")
        }
        assert metrics["rsum"] == pytest.approx(metrics["t2v_rsum"] + metrics["v2t_rsum"])
    report = (tmp_path / "post" / "results.md").read_text()
    assert report.count("| tiny-msam") == 8  # 4 rows (plain + 3 methods) × 2 caption-set sizes
    assert "test-time post-processing" in report and "+QB-Norm: querybank normalisation" in report


def test_msam_evaluate_rejects_an_unknown_postprocessing_method(model_dir, dataset_dir, tmp_path, capsys):
    assert _evaluate(model_dir, dataset_dir, tmp_path, "--postprocess", "csls") == 2
    assert "unknown method(s) ['csls']" in capsys.readouterr().err
