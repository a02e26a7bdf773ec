"""The training script (`accelerate launch training/train.py`) and its recipes; installed as `msam_hf.training`."""
