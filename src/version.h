/* version.h - the one place the version string lives. */
#ifndef WAGATE_VERSION_H
#define WAGATE_VERSION_H

#include "build-config.h" /* autoconf: PACKAGE_VERSION */

#define WAGATE_VERSION PACKAGE_VERSION
#define WAGATE_USER_AGENT "wagate/" PACKAGE_VERSION

#endif
