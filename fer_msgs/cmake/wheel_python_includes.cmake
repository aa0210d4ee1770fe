# The PyPI ROS 2 wheels export their *__rosidl_generator_py targets with include
# directories of the interpreter that built the wheels (/opt/python/...). CMake refuses
# imported targets whose include directories do not exist, so once configuration is done
# we re-point exactly those stale directories at this interpreter's Python and NumPy
# headers. Targets whose directories exist (any normal ROS 2 install) are left untouched.

function(_fer_msgs_repoint_stale_python_includes)
  find_package(Python3 REQUIRED COMPONENTS Interpreter Development NumPy)
  get_property(_targets DIRECTORY "${CMAKE_SOURCE_DIR}" PROPERTY IMPORTED_TARGETS)
  foreach(_target IN LISTS _targets)
    if(NOT _target MATCHES "__rosidl_generator_py$")
      continue()
    endif()
    get_target_property(_dirs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT _dirs)
      continue()
    endif()
    set(_stale FALSE)
    foreach(_dir IN LISTS _dirs)
      if(NOT EXISTS "${_dir}")
        set(_stale TRUE)
      endif()
    endforeach()
    if(_stale)
      message(STATUS "fer_msgs: re-pointing stale Python includes of ${_target}")
      set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES
        "${Python3_INCLUDE_DIRS};${Python3_NumPy_INCLUDE_DIRS}")
    endif()
  endforeach()
endfunction()

cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _fer_msgs_repoint_stale_python_includes)
