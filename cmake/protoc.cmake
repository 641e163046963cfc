# herald_protoc_c(<out_var> ROOT <import root> PROTOS <relative paths...>)
# Runs protoc-c for each proto (paths relative to ROOT) into ${HERALD_GEN_DIR}
# and appends the generated .pb-c.c files to <out_var>.
set(HERALD_GEN_DIR ${CMAKE_BINARY_DIR}/gen)
set(HERALD_PROTO_INCLUDES
    ${CMAKE_SOURCE_DIR}/proto
    /usr/include
    /usr/share/grpc-proto
    ${CMAKE_SOURCE_DIR}/tests/proto)

function(herald_protoc_c out_var)
  cmake_parse_arguments(A "" "ROOT" "PROTOS" ${ARGN})
  set(srcs)
  set(inc_flags)
  foreach(d ${HERALD_PROTO_INCLUDES})
    list(APPEND inc_flags -I${d})
  endforeach()
  foreach(p ${A_PROTOS})
    string(REGEX REPLACE "\\.proto$" "" stem ${p})
    set(c ${HERALD_GEN_DIR}/${stem}.pb-c.c)
    set(h ${HERALD_GEN_DIR}/${stem}.pb-c.h)
    add_custom_command(
      OUTPUT ${c} ${h}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${HERALD_GEN_DIR}
      COMMAND ${PROTOC_C} ${inc_flags} --c_out=${HERALD_GEN_DIR} ${A_ROOT}/${p}
      DEPENDS ${A_ROOT}/${p}
      COMMENT "protoc-c ${p}"
      VERBATIM)
    list(APPEND srcs ${c})
  endforeach()
  set(${out_var} ${${out_var}} ${srcs} PARENT_SCOPE)
endfunction()

# herald_embed(<target_c_file> <input> <symbol>): input bytes -> C array
# `const unsigned char <symbol>[]` and `const size_t <symbol>_len`.
function(herald_embed out_c input symbol)
  add_custom_command(
    OUTPUT ${out_c}
    COMMAND ${CMAKE_COMMAND} -DIN=${input} -DOUT=${out_c} -DSYM=${symbol}
            -P ${CMAKE_SOURCE_DIR}/cmake/embed.cmake
    DEPENDS ${input} ${CMAKE_SOURCE_DIR}/cmake/embed.cmake
    COMMENT "embed ${symbol}"
    VERBATIM)
endfunction()

# herald_existing(<out_var> <files...>): the subset of files (relative to the
# current source dir) that exist, so a library can list modules that are
# still being written without breaking the build.
function(herald_existing out_var)
  set(found)
  foreach(f ${ARGN})
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${f})
      list(APPEND found ${CMAKE_CURRENT_SOURCE_DIR}/${f})
    endif()
  endforeach()
  set(${out_var} ${found} PARENT_SCOPE)
endfunction()
