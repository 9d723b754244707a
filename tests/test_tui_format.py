from energy_console.core.store.records import RunRecord
from energy_console.tui.format import quality as quality_cell


def quality(cells: dict) -> str:
    return quality_cell(RunRecord.from_dict({"run_id": "r", **cells}))


def test_quality_cells_show_the_task_metric_with_top1_fidelity_beside_it():
    assert quality({"quality_metric": "accuracy", "quality_value": "0.9375",
                    "fidelity_top1": "0.96875"}) == "acc 0.938 top1 0.97"
    assert quality({"quality_metric": "perplexity", "quality_value": "1074.2"}) == "ppl 1074"
    assert quality({"quality_metric": "top1_agreement", "quality_value": "0.75",
                    "fidelity_top1": "0.75"}) == "top1 0.75"
    assert quality({"quality_metric": "", "quality_value": "", "fidelity_top1": ""}) == "—"


def test_detector_quality_cells_show_map_with_fidelity_map_beside_it():
    assert quality({"quality_metric": "map", "quality_value": "0.00255",
                    "fidelity_map": "0.804"}) == "mAP 0.00255 fid 0.80"
    assert quality({"quality_metric": "fidelity_map", "quality_value": "1",
                    "fidelity_map": "1"}) == "fid-mAP 1.00"
