# Manual pages.
dist_man_MANS += man/xenblkd.8
dist_man_MANS += man/xenblkctl.8
