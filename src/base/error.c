/* error.c: names and messages for cf_err. The switch has no default so a new error without a
 * message is a compiler warning (and an error under -Werror). */
#include "base/error.h"

const char *cf_err_name(cf_err e)
{
    switch (e) {
#define CF_ERR_NAME(name, msg) case CF_E_##name: return "CF_E_" #name;
        CF_ERRORS(CF_ERR_NAME)
#undef CF_ERR_NAME
    case CF_E__COUNT: break;
    }
    return "CF_E_UNKNOWN";
}

const char *cf_err_message(cf_err e)
{
    switch (e) {
#define CF_ERR_MSG(name, msg) case CF_E_##name: return msg;
        CF_ERRORS(CF_ERR_MSG)
#undef CF_ERR_MSG
    case CF_E__COUNT: break;
    }
    return "unknown error";
}
