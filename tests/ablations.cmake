# Issue 9: `bevt-run --suite` (order, skip finished, resume after a failed experiment), bevt-report (tables,
# CSV, PNG charts read back with OpenCV; bad input), every experiments/ablations suite validates, and the
# inflation of image-stream checkpoints the suites use.
# Issue 18: bevt-report's mean ± std over seeds and its 2-std significance marking (pure table code, no media).
bevt_add_gtest(test_report_stats ${CMAKE_CURRENT_SOURCE_DIR}/test_report_stats.cpp
  ${PROJECT_SOURCE_DIR}/core/src/tools/bevt_report_tables.cpp ${PROJECT_SOURCE_DIR}/core/src/tools/bevt_report_stats.cpp)
target_include_directories(test_report_stats PRIVATE ${PROJECT_SOURCE_DIR}/core/src/tools)
# Issue 18: the synthetic generator's nuisances (colour, size, position carry no label with equal_area) and the
# labelled set inside the unlabelled pool.
if(TARGET synthetic_generator)
  bevt_add_gtest(test_synthetic_nuisance ${CMAKE_CURRENT_SOURCE_DIR}/test_synthetic_nuisance.cpp)
  target_link_libraries(test_synthetic_nuisance PRIVATE bevt::data synthetic_generator)
endif()

if(NOT BEVT_WITH_MEDIA)
  return()  # bevt-report and the PNG charts need OpenCV's image codecs
endif()
set(BEVT_TEST_LABELS integration)  # runs the real binaries
bevt_add_gtest(test_ablations ${CMAKE_CURRENT_SOURCE_DIR}/test_ablations.cpp)
unset(BEVT_TEST_LABELS)
target_link_libraries(test_ablations PRIVATE ${OpenCV_LIBS})
target_include_directories(test_ablations SYSTEM PRIVATE ${OpenCV_INCLUDE_DIRS})
add_dependencies(test_ablations bevt-run bevt-report video_swin timesformer mim i3d standard_maskers synthetic
  imagenet kinetics ssv2 diving48 dalle vq pixels)
