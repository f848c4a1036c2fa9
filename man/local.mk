# Manual pages.
dist_man_MANS += man/xenblkd.8 man/xenblkd.conf.5 man/xenblkctl.8
