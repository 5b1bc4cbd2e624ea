/* hex.h - the value of one hexadecimal digit, as percent-escapes and hex
 * strings spell it. ASCII only: no locale. */
#ifndef WAGATE_HEX_H
#define WAGATE_HEX_H

/* 0-15 for '0'-'9', 'a'-'f', 'A'-'F'; -1 for anything else (any int, so a
 * plain char holding a byte above 0x7f is simply not a digit). */
static inline int
hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
