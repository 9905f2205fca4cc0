/* Built with only src/include on the include path: bitnet.h must be self-contained. Uses the
 * types it promises to declare so that a missing one fails the build. */
#include "bitnet.h"

int bn_public_header_probe(void);

int bn_public_header_probe(void)
{
    bn_err err = {0};
    bn_sampling_params sp = bn_sampling_default();
    bn_chat_msg m = {"user", "hi"};
    bn_generate_params g = bn_generate_default();
    g.messages = &m;
    g.n_messages = 1;
    g.sampling = sp;
    return (int)err.code + bn_cpu_count() + (int)sizeof BN_VERSION + (g.n_messages == 1);
}
