# bevt-report: tables (markdown, CSV) and plots (PNG, drawn with OpenCV) from finished runs. Needs OpenCV's
# image codecs: not part of a BEVT_WITH_MEDIA=OFF build.
if(NOT BEVT_WITH_MEDIA)
  return()
endif()
bevt_add_tool(bevt-report src/tools/bevt_report.cpp src/tools/bevt_report_load.cpp src/tools/bevt_report_tables.cpp
  src/tools/bevt_report_stats.cpp src/tools/bevt_report_plot.cpp)
target_link_libraries(bevt-report PRIVATE ${OpenCV_LIBS})
target_include_directories(bevt-report SYSTEM PRIVATE ${OpenCV_INCLUDE_DIRS})
