# DALL-E dVAE encoder tokenizer: parity with OpenAI's Encoder, and property tests beyond the fixture.
bevt_add_parity_test(dalle_encoder)
bevt_add_gtest(test_dalle test_dalle.cpp)
add_dependencies(test_dalle dalle)
