import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(2)


@pytest.fixture(scope="session")
def pipe():
    from diffusers.utils import logging

    from t2v import T2VPipeline, default_model_path

    logging.set_verbosity_error()
    pipeline = T2VPipeline.from_pretrained(default_model_path())
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


@pytest.fixture
def fast():
    """Few steps: these tests check shapes and plumbing, not picture quality."""
    return dict(num_inference_steps=2, planner_steps=2)
