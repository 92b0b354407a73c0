# PeCo's adversarial training through the real bevt-run (run.mode = "tokenizer"): logged discriminator terms,
# checkpoints with the discriminator, the result as the frozen tokenizer of a pretrain run, kill-and-resume bit
# equality, bad adversarial keys (exit 2).
set(BEVT_TEST_LABELS integration)  # runs the real binaries
bevt_add_gtest(test_peco_train ${CMAKE_CURRENT_SOURCE_DIR}/test_peco_train.cpp)
unset(BEVT_TEST_LABELS)
add_dependencies(test_peco_train bevt-run vq video_swin mim standard_maskers synthetic)
