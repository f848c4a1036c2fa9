# Manual pages.
dist_man_MANS += man/xenblkd.8
