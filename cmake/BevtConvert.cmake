# build/bin/bevt-convert: the checkpoint converters (tools/convert_checkpoint.py, tools/convert_dalle.py) on the
# Python whose torch the build links, BEVT_PYTHON. By default that is the interpreter of the environment that
# holds ${Torch_DIR} (<prefix>/lib/pythonX.Y/site-packages/torch/share/cmake/Torch -> <prefix>/bin/python3),
# checked to find that same torch; scripts/setup.sh's venv also holds numpy and safetensors for the converters.
if(NOT BEVT_PYTHON)
  get_filename_component(_bevt_site "${Torch_DIR}/../../../.." ABSOLUTE)
  get_filename_component(_bevt_prefix "${_bevt_site}/../../.." ABSOLUTE)
  foreach(_c "${_bevt_prefix}/bin/python3" "${_bevt_prefix}/bin/python")
    if(EXISTS "${_c}")
      execute_process(COMMAND "${_c}" -c "import importlib.util as u; print(u.find_spec('torch').origin)"
        OUTPUT_VARIABLE _bevt_origin OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _bevt_rc)
      get_filename_component(_bevt_origin "${_bevt_origin}" DIRECTORY)
      get_filename_component(_bevt_origin "${_bevt_origin}" REALPATH)
      get_filename_component(_bevt_want "${_bevt_site}/torch" REALPATH)
      if(_bevt_rc EQUAL 0 AND _bevt_origin STREQUAL _bevt_want)
        set(_bevt_python "${_c}")
        break()
      endif()
    endif()
  endforeach()
  if(NOT _bevt_python)
    message(WARNING "bevt: no Python next to ${_bevt_site} imports that torch; set -DBEVT_PYTHON=<python with "
                    "torch, numpy and safetensors> for build/bin/bevt-convert (scripts/setup.sh does)")
    set(_bevt_python "${_bevt_prefix}/bin/python3")
  endif()
endif()
set(BEVT_PYTHON "${_bevt_python}" CACHE FILEPATH "Python with bevt's torch, numpy and safetensors (the converters)")
execute_process(COMMAND "${BEVT_PYTHON}" -c "import safetensors" RESULT_VARIABLE _bevt_rc OUTPUT_QUIET ERROR_QUIET)
if(NOT _bevt_rc EQUAL 0)
  message(WARNING "bevt: ${BEVT_PYTHON} cannot import safetensors, so bevt-convert will not run: "
                  "run bash scripts/setup.sh")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/bevt-convert.in ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/bevt-convert @ONLY
  FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
