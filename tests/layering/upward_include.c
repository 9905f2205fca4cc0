/* Compiled by the layering tests (CMakeLists.txt, bn_layer_probe) against one layer's include
 * directories with BN_PROBE_HEADER naming a header of a layer above it: the build must fail
 * with "No such file", which proves that an upward include cannot compile. */
#include BN_PROBE_HEADER

int bn_layer_probe_unused;
