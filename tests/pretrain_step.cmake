# One BEVT pre-training step against the official code: bevt-forward runs the trainer's own step
# (pretrain_iteration, TrainModel) on tests/fixtures/bevt_pretrain_step and checks losses, accuracies (1e-4),
# tokens (identical) and every parameter's gradient (1e-3).
bevt_add_parity_test(bevt_pretrain_step)
