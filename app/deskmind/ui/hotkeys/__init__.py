"""Global hotkeys: pynput where it works, the XDG portal on Wayland, ``deskmind trigger`` otherwise."""
