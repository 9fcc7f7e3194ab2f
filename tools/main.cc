// thinp: the command-line front end. See tools/cli.h.
#include <cstdio>

int main(int argc, char** argv) {
  std::puts("thinp " THINP_VERSION);
  return 0;
}
