/* bitnet-run's exit status from the library's error code (never from the message text). */
#include "cli.h"

int cli_exit_status(bn_err_code code)
{
    switch (code) {
    case BN_OK: return CLI_OK;
    case BN_E_INPUT:
    case BN_E_CONTEXT_FULL: /* the prompt is too long for -c: the user's input to change */
        return CLI_USAGE;
    case BN_E_NOMEM: return CLI_NOMEM;
    case BN_E_FORMAT:
    case BN_E_IO:
    case BN_E_UNSUPPORTED:
    case BN_E_INTERNAL: return CLI_FAIL;
    }
    return CLI_FAIL;
}
