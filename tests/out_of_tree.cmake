# An out-of-tree plugin built against the installed SDK and loaded by the unchanged host.
add_test(NAME integration.out_of_tree_plugin
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/out_of_tree.sh ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR})
set_tests_properties(integration.out_of_tree_plugin PROPERTIES LABELS integration TIMEOUT 900)
