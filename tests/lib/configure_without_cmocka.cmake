# tests/lib/configure_without_cmocka.cmake: volperm configures, builds and
# registers its tests on a machine without cmocka (issue 12: "cmocka found
# optionally so a plain configure works without it").
#
#   cmake -DSRC=REPO -DWORK=DIR [-DPKG_CONFIG=/usr/bin/pkg-config]
#         [-DGENERATOR="Unix Makefiles"] -P tests/lib/configure_without_cmocka.cmake
#
# CTest runs it as cli/configure_without_cmocka. A machine without
# libcmocka-dev is simulated, not assumed: WORK/bin/pkg-config answers
# "not found" for cmocka and hands every other question to the real
# pkg-config, so the configure takes the same path as on such a machine
# (libacl and popt are still found). Then, in the throwaway tree WORK/build:
#   1. a plain `cmake -S SRC -B WORK/build` succeeds and says cmocka was not found;
#   2. the build succeeds (the binary, no test_* program);
#   3. `ctest -N` lists no C unit test, but the shell suites and the Python tests;
#   4. -DVOLPERM_WITH_CMOCKA=OFF configures the same way (configure only).
# Any failure is FATAL_ERROR (exit 1). WORK is removed first and at the end.
cmake_minimum_required(VERSION 3.18)
foreach(v SRC WORK)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "usage: cmake -DSRC=REPO -DWORK=DIR -P ${CMAKE_CURRENT_LIST_FILE}")
  endif()
endforeach()
if(NOT PKG_CONFIG)
  find_program(PKG_CONFIG pkg-config REQUIRED)
endif()
if(NOT GENERATOR)
  set(GENERATOR "Unix Makefiles")
endif()

file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/bin)
# The stand-in pkg-config: every argument naming cmocka makes it fail, as
# the real one does when cmocka.pc is not installed.
file(WRITE ${WORK}/pkg-config.in "#!/bin/sh
for a in \"$@\"; do
	case $a in cmocka*) echo \"Package cmocka was not found (simulated)\" >&2; exit 1 ;; esac
done
exec '${PKG_CONFIG}' \"$@\"
")
file(COPY ${WORK}/pkg-config.in DESTINATION ${WORK}/bin
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
file(RENAME ${WORK}/bin/pkg-config.in ${WORK}/bin/pkg-config)

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "FAIL: ${what} (exit ${rc}):\n${out}\n${err}")
  endif()
  message("ok: ${what}")
  set(RUN_OUT "${out}${err}" PARENT_SCOPE)
endfunction()

# 1. configure, the way a user would, but with the stand-in pkg-config
#    (CMake's FindPkgConfig takes PKG_CONFIG_EXECUTABLE from the cache).
run("configure without cmocka"
    ${CMAKE_COMMAND} -S ${SRC} -B ${WORK}/build -G ${GENERATOR}
    -DPKG_CONFIG_EXECUTABLE=${WORK}/bin/pkg-config -DCMAKE_BUILD_TYPE=Debug)
if(NOT RUN_OUT MATCHES "cmocka not found")
  message(FATAL_ERROR "FAIL: configure did not report cmocka missing; the stand-in was not used:\n${RUN_OUT}")
endif()
message("ok: configure says cmocka was not found")

# 2. build everything the default target builds
include(ProcessorCount)
ProcessorCount(ncpu)
if(ncpu EQUAL 0)
  set(ncpu 2)
endif()
run("build without cmocka" ${CMAKE_COMMAND} --build ${WORK}/build -j ${ncpu})
if(NOT EXISTS ${WORK}/build/volperm)
  message(FATAL_ERROR "FAIL: the build made no volperm binary")
endif()
file(GLOB unit_bins ${WORK}/build/test_*)
if(unit_bins)
  message(FATAL_ERROR "FAIL: C unit test programs were built without cmocka: ${unit_bins}")
endif()
message("ok: volperm built, no C unit test program")

# 3. the test list
run("ctest -N" ${CMAKE_CTEST_COMMAND} --test-dir ${WORK}/build -N)
string(REGEX MATCHALL "unit/[a-z_]+" units "${RUN_OUT}")
foreach(u IN LISTS units)
  if(NOT u MATCHES "^unit/py_")
    message(FATAL_ERROR "FAIL: C unit test ${u} registered without cmocka")
  endif()
endforeach()
foreach(t cli/safety security/mounts policy/grant crash/enospc)
  if(NOT RUN_OUT MATCHES "${t}\n")
    message(FATAL_ERROR "FAIL: ${t} is not registered without cmocka:\n${RUN_OUT}")
  endif()
endforeach()
message("ok: no C unit test registered; the shell suites are")

# 4. the option: the real pkg-config, and still no cmocka
run("configure with -DVOLPERM_WITH_CMOCKA=OFF"
    ${CMAKE_COMMAND} -S ${SRC} -B ${WORK}/build-off -G ${GENERATOR}
    -DVOLPERM_WITH_CMOCKA=OFF -DPKG_CONFIG_EXECUTABLE=${PKG_CONFIG})
run("ctest -N (VOLPERM_WITH_CMOCKA=OFF)" ${CMAKE_CTEST_COMMAND} --test-dir ${WORK}/build-off -N)
string(REGEX MATCHALL "unit/[a-z_]+" units "${RUN_OUT}")
foreach(u IN LISTS units)
  if(NOT u MATCHES "^unit/py_")
    message(FATAL_ERROR "FAIL: C unit test ${u} registered with VOLPERM_WITH_CMOCKA=OFF")
  endif()
endforeach()
message("ok: -DVOLPERM_WITH_CMOCKA=OFF registers no C unit test")

file(REMOVE_RECURSE ${WORK})
message("configure_without_cmocka: every check passed")
