# Helper for tests/headers/CMakeLists.txt, run with cmake -P.
#
# MODE=generate HEADER=<path> NAME=<n> OUT_C=<f> OUT_CXX=<f> OUT_FUNCTIONS=<f>
#   writes the C and C++ translation units for one public header and the
#   list of HOTSPAN_API functions it declares.
# MODE=check NM=<nm> OBJECTS=<o1|o2|...> FUNCTIONS=<dir> STAMP=<f>
#   fails if a compiled C++ unit refers to a hotspan_ function by a mangled
#   (C++ linkage) name, or does not refer to a declared function by its
#   plain C name; touches STAMP on success.
cmake_minimum_required(VERSION 3.18)

if(MODE STREQUAL "generate")
  file(READ "${HEADER}" text)
  # A declaration is HOTSPAN_API, then the return type, then the name just
  # before "(". Only names starting with hotspan_ count, which skips the
  # macro's own definition and mentions of it in comments.
  string(REGEX MATCHALL "HOTSPAN_API[^;(]*\\(" decls "${text}")
  set(functions "")
  foreach(decl IN LISTS decls)
    if(decl MATCHES "(hotspan_[A-Za-z0-9_]*)[ \t\r\n]*\\($")
      list(APPEND functions ${CMAKE_MATCH_1})
    endif()
  endforeach()
  list(REMOVE_DUPLICATES functions)

  set(include "#include \"hotspan/${NAME}.h\"\n")
  set(head "/* Generated from include/hotspan/${NAME}.h; do not edit. */\n")
  file(CONFIGURE OUTPUT "${OUT_C}" CONTENT
"${head}${include}${include}
/* ISO C forbids an empty translation unit. */
typedef int hotspan_header_test_${NAME};
")
  set(refs "")
  foreach(fn IN LISTS functions)
    string(APPEND refs
           "    reinterpret_cast<hotspan_header_fn>(&${fn}),\n")
  endforeach()
  set(table "")
  if(functions)
    set(table
"typedef void (*hotspan_header_fn)(void);
/* Not const and not static: the table has external linkage, so the
 * references survive into the object file. */
extern hotspan_header_fn hotspan_header_refs_${NAME}[];
hotspan_header_fn hotspan_header_refs_${NAME}[] = {
${refs}};
")
  endif()
  file(CONFIGURE OUTPUT "${OUT_CXX}" CONTENT
"${head}${include}${include}
${table}typedef int hotspan_header_test_${NAME};
")
  string(REPLACE ";" "\n" fn_lines "${functions}")
  file(CONFIGURE OUTPUT "${OUT_FUNCTIONS}" CONTENT "${fn_lines}\n")

elseif(MODE STREQUAL "check")
  string(REPLACE "|" ";" objects "${OBJECTS}")
  set(errors "")
  foreach(obj IN LISTS objects)
    # header_<name>.cpp.o -> header_<name>.functions
    get_filename_component(base "${obj}" NAME)
    string(REGEX REPLACE "\\.cpp\\.o(bj)?$" "" base "${base}")
    set(fn_file "${FUNCTIONS}/${base}.functions")
    if(NOT EXISTS "${fn_file}")
      string(APPEND errors "no function list ${fn_file} for ${obj}\n")
      continue()
    endif()
    execute_process(COMMAND "${NM}" -u "${obj}" OUTPUT_VARIABLE undefined
                    RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      string(APPEND errors "${NM} -u ${obj} failed\n")
      continue()
    endif()
    string(REGEX MATCHALL "_Z[A-Za-z0-9_]*hotspan_[A-Za-z0-9_]*" mangled
           "${undefined}")
    foreach(m IN LISTS mangled)
      string(APPEND errors
             "${base}: ${m} has C++ linkage (missing extern \"C\" block?)\n")
    endforeach()
    file(STRINGS "${fn_file}" functions)
    foreach(fn IN LISTS functions)
      if(fn AND NOT undefined MATCHES "[ \t]U[ \t]+${fn}\n")
        string(APPEND errors "${base}: no C-linkage reference to ${fn}\n")
      endif()
    endforeach()
  endforeach()
  if(errors)
    message(FATAL_ERROR "public header linkage check failed:\n${errors}")
  endif()
  file(TOUCH "${STAMP}")
else()
  message(FATAL_ERROR "header_test.cmake: unknown MODE '${MODE}'")
endif()
