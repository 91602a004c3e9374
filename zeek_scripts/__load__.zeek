# Loading this directory (@load /path/to/zeek_scripts) loads the package.
@load ./scripts
