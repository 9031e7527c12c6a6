"""The package's version, in a module of its own so that any module can import it.

``deepsad/__init__.py`` re-exports it as ``deepsad.__version__``; modules inside the
package import it from here, since importing a name from the package's ``__init__``
would make the two import each other.
"""

__version__ = "0.1.0"
