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
# qemu's -L prefix decides which ld.so runs; ld.so then finds libc through the host's ld.so.cache,
# i.e. in /lib/aarch64-linux-gnu when Debian's arm64 multiarch libc6 is installed (libcmocka-dev:arm64
# and libcurl4-openssl-dev:arm64 pull it in). ld.so from libc6-arm64-cross (2.36-8) with libc from
# libc6:arm64 (2.36-9+deb12uN) hangs in the first pthread_create, so take both from the same place.
if(EXISTS /lib/ld-linux-aarch64.so.1)
  set(BITNET_QEMU_LD_PREFIX /)
else()
  set(BITNET_QEMU_LD_PREFIX /usr/aarch64-linux-gnu)
endif()
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -cpu ${QEMU_CPU} -L ${BITNET_QEMU_LD_PREFIX})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
# FindCURL asks pkg-config first: point it at the arm64 .pc files, not the host's (otherwise
# the x86_64 curl headers and library are picked and the lambda targets fail to build).
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
