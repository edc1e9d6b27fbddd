"""ceilings"""
