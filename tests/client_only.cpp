// Description: client_only.c built as C++ (the header-only client's
// declarations and implementation compile as C++17 and C++20).
#include "client_only.c"
