import os
import sys

# The numpy textbook oracle sits beside the tests.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
