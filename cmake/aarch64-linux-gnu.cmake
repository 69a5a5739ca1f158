# aarch64-linux-gnu.cmake: CMake toolchain file to cross-build weft for 64-bit
# Arm Linux with the GNU cross compiler (Debian: gcc-aarch64-linux-gnu and
# libc6-dev-arm64-cross, whose headers and libraries live in
# /usr/aarch64-linux-gnu).
#
#   cmake -S . -B build-aarch64 \
#         -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#
# If qemu-aarch64 (qemu-user) is installed, it becomes the emulator that
# ctest and add_custom_command use to run the aarch64 binaries.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)  # makes WEFT_ARCH default to aarch64

set(WEFT_CROSS_TRIPLE aarch64-linux-gnu)
set(WEFT_CROSS_ROOT /usr/${WEFT_CROSS_TRIPLE}
    CACHE PATH "Where the aarch64 C library and headers are installed")

set(CMAKE_C_COMPILER ${WEFT_CROSS_TRIPLE}-gcc)
set(CMAKE_ASM_COMPILER ${WEFT_CROSS_TRIPLE}-gcc)  # switch.S goes through cpp

# Look for libraries, headers and packages in the aarch64 tree only, for
# programs (the build's own tools) on the host only.
set(CMAKE_FIND_ROOT_PATH ${WEFT_CROSS_ROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

find_program(WEFT_QEMU_AARCH64 qemu-aarch64)
if(WEFT_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${WEFT_QEMU_AARCH64} -L ${WEFT_CROSS_ROOT})
endif()
