# Cross-compile for aarch64 Linux with Debian's cross packages; ctest runs the test binaries
# through qemu-aarch64 (CMAKE_CROSSCOMPILING_EMULATOR).
#
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
#         [-DARM64_CC=gcc|clang|clang-19] [-DQEMU_CPU=neoverse-n1|max|cortex-a53] \
#         [-DBITNET_ARM_MCPU=neoverse-n1]   (default: Armv8.0 + runtime kernel dispatch)
#
# QEMU_CPU: neoverse-n1 (Graviton2: dotprod, fp16; i8mm/SVE raise SIGILL), max (everything,
# i8mm included), cortex-a53 (Armv8.0: no dotprod). libcmocka/libcurl come from Debian's
# arm64 multiarch packages in /usr/lib/aarch64-linux-gnu.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

if(NOT DEFINED ARM64_CC)
  set(ARM64_CC gcc)
endif()
if(ARM64_CC STREQUAL "gcc")
  set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
else()
  set(CMAKE_C_COMPILER ${ARM64_CC})
  set(CMAKE_C_COMPILER_TARGET aarch64-linux-gnu)
endif()

if(NOT DEFINED QEMU_CPU)
  set(QEMU_CPU neoverse-n1)
endif()
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -cpu ${QEMU_CPU} -L /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
