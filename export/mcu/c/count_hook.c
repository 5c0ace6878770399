/* A unicorn block hook that counts Thumb-2 instructions without calling back into Python: the
 * first halfword of an instruction tells its length (0b11101, 0b11110, 0b11111: 32 bits). */
#include <stdint.h>

typedef struct {
    const uint8_t *image; /* the code as loaded, from address 0 */
    uint64_t image_size;
    uint64_t count;
} ge_counter_t;

void ge_count_block(void *uc, uint64_t address, uint32_t size, void *user)
{
    ge_counter_t *c = (ge_counter_t *)user;
    uint64_t off = address;
    const uint64_t end = address + size;
    (void)uc;
    while (off + 1 < end && off + 1 < c->image_size) {
        const unsigned top = (unsigned)(c->image[off + 1] >> 3);
        off += (top == 0x1D || top == 0x1E || top == 0x1F) ? 4u : 2u;
        c->count++;
    }
}
