# Trainable VQ tokenizers (vq, peco): shapes, nearest-code tokens, a short training run, dead-code restarts,
# weights round trip and errors, peco's perceptual term through a frozen video_swin (skipped when absent); the
# pixels and hog plugins' regression targets (MAE's normalised pixels, MaskFeat's HOG).
bevt_add_gtest(test_vq_tokenizer test_vq_tokenizer.cpp)
add_dependencies(test_vq_tokenizer vq pixels hog)
